/* cli/statuspage.c - `peerfs mount --status-page HOST:PORT`: a small
 * read-only web page served by the mount daemon, showing what `peerfs
 * status --json` says, refreshed every second by the page itself.
 *
 * HTTP is libmicrohttpd's (its own listening thread, "status-page"): no
 * request is parsed here beyond comparing the URL's first segment with
 * the token. The page is only for the user who mounted: it listens on a
 * loopback address only, and every URL starts with a random token
 * (printed at start and in mount.log, which is 0600), compared in
 * constant time; anything else is 403. The data is owner_status()'s JSON,
 * the very text `peerfs status --json` prints. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "log.h"
#include "owner/owner.h"

#define TOKEN_BYTES 16
#define TOKEN_HEX (2 * TOKEN_BYTES)

struct cli_statuspage {
	struct MHD_Daemon *d;
	struct owner *owner;
	char *mnt;
	char token[TOKEN_HEX + 1];
};

/* The page: markup, style and script inline (no external asset, so the
 * policy below can forbid every other source); it fetches status.json
 * beside it every second and rebuilds its parts with textContent only,
 * since addresses and errors come from peers. */
static const char page_html[] =
"<!DOCTYPE html>\n"
"<html lang='en'><head><meta charset='utf-8'>\n"
"<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
"<title>peerfs status</title>\n"
"<style>\n"
"body{font:14px system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d232b}\n"
"header{background:#1d232b;color:#fff;padding:12px 20px;display:flex;gap:16px;align-items:baseline}\n"
"header h1{font-size:18px;margin:0}#mnt{font-family:monospace}\n"
"#updated{margin-left:auto;font-size:12px;opacity:.75}\n"
"main{padding:16px 20px;display:grid;gap:16px}\n"
"section{background:#fff;border-radius:6px;padding:12px 16px;box-shadow:0 1px 2px #0002}\n"
"h2{font-size:15px;margin:0 0 8px}\n"
"table{border-collapse:collapse;width:100%}\n"
"th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ea;white-space:nowrap}\n"
"td.num,th.num{text-align:right}.mono{font-family:monospace}\n"
".st{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:12px}\n"
".online{background:#2e8b57}.spare{background:#5b8bd9}.connecting{background:#8a8f98}\n"
".suspect{background:#d08c00}.offline{background:#c2410c}.dead{background:#b91c1c}\n"
".share{display:inline-block;height:8px;background:#5b8bd9;border-radius:2px;vertical-align:middle;margin-right:6px}\n"
".bar{height:14px;background:#e3e6ea;border-radius:7px;overflow:hidden;margin:6px 0}\n"
".bar div{height:100%;background:#2e8b57}\n"
".legend span{margin-right:14px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px}\n"
"#err{display:none;background:#b91c1c;color:#fff;padding:8px 20px}\n"
".cols{display:grid;grid-template-columns:1fr 1fr;gap:16px}\n"
"</style></head>\n"
"<body data-refreshes='0'>\n"
"<header><h1>peerfs</h1><span id='mnt'></span><span id='state' class='st connecting'>loading</span>"
"<span id='summary'></span><span id='updated'></span></header>\n"
"<div id='err'></div>\n"
"<main>\n"
"<section><h2>Suppliers</h2><table><thead><tr><th>supplier</th><th>address</th>"
"<th>state</th><th class='num'>fragments</th><th>share</th><th class='num'>balance (proved)</th>"
"<th class='num'>held</th><th class='num'>rtt ms</th><th>note</th></tr></thead>"
"<tbody id='suppliers'></tbody></table></section>\n"
"<section><h2>Blocks by redundancy</h2><svg id='blocks' width='100%' height='28' "
"viewBox='0 0 1000 28' preserveAspectRatio='none' role='img'></svg>"
"<div id='legend' class='legend'></div></section>\n"
"<div class='cols'>\n"
"<section><h2>Upload</h2><div class='bar'><div id='upbar'></div></div><div id='uptext'></div></section>\n"
"<section><h2>Rebuild</h2><div class='bar'><div id='rbbar'></div></div><div id='rbtext'></div></section>\n"
"</div>\n"
"<section><h2>Maintenance</h2><div id='misc'></div></section>\n"
"</main>\n"
"<script>\n"
"'use strict';\n"
"const $=id=>document.getElementById(id);\n"
"function el(tag,text,cls){const e=document.createElement(tag);"
"if(text!==undefined)e.textContent=String(text);if(cls)e.className=cls;return e;}\n"
"function bytes(n){const u=['B','KiB','MiB','GiB','TiB'];let i=0;"
"while(n>=1024&&i<u.length-1){n/=1024;i++;}return (i?n.toFixed(1):n)+' '+u[i];}\n"
"function bar(id,done,total){$(id).style.width=(total>0?100*done/total:100)+'%';}\n"
"function suppliers(s){const tb=$('suppliers');tb.replaceChildren();"
"let all=0;for(const p of s.suppliers)all+=p.placed_fragments;\n"
"for(const p of s.suppliers){const tr=el('tr');tr.dataset.state=p.state;"
"tr.appendChild(el('td',p.id.slice(0,16),'mono'));tr.appendChild(el('td',p.address,'mono supplier-address'));\n"
"const st=el('td');st.appendChild(el('span',p.state,'st '+p.state));tr.appendChild(st);\n"
"tr.appendChild(el('td',p.placed_fragments,'num'));"
"const pct=all?100*p.placed_fragments/all:0;const sh=el('td');const b=el('span','','share');"
"b.style.width=(pct*1.2)+'px';sh.appendChild(b);sh.appendChild(el('span',pct.toFixed(1)+'%'));tr.appendChild(sh);\n"
"tr.appendChild(el('td',bytes(p.balance.proved)+(p.balance.vetted?'':' (new)'),'num'));"
"tr.appendChild(el('td',bytes(p.balance.held),'num'));"
"tr.appendChild(el('td',p.rtt_ms.toFixed(2),'num'));"
"tr.appendChild(el('td',p.refusal||p.last_error||''));tb.appendChild(tr);}}\n"
"function blocks(s){const b=s.blocks,parts=[['full',b.full,'#2e8b57']];"
"const miss=Object.keys(b.degraded_by_missing).sort((x,y)=>x-y);"
"const shades=['#e0b000','#d08c00','#c06a00','#a85000'];\n"
"miss.forEach((k,i)=>parts.push([k+' missing',b.degraded_by_missing[k],shades[Math.min(i,3)]]));"
"parts.push(['lost',b.lost,'#b91c1c']);parts.push(['pending upload',b.pending,'#8a8f98']);\n"
"const total=parts.reduce((a,p)=>a+p[1],0),svg=$('blocks'),lg=$('legend');"
"svg.replaceChildren();lg.replaceChildren();let x=0;\n"
"if(!total){const r=document.createElementNS('http://www.w3.org/2000/svg','rect');"
"r.setAttribute('width',1000);r.setAttribute('height',28);r.setAttribute('fill','#e3e6ea');svg.appendChild(r);}\n"
"for(const [name,n,color] of parts){if(total&&n){const w=1000*n/total,"
"r=document.createElementNS('http://www.w3.org/2000/svg','rect');"
"r.setAttribute('x',x);r.setAttribute('width',w);r.setAttribute('height',28);r.setAttribute('fill',color);"
"const t=document.createElementNS('http://www.w3.org/2000/svg','title');t.textContent=name+': '+n;"
"r.appendChild(t);svg.appendChild(r);x+=w;}\n"
"const sp=el('span');const sw=el('span','','sw');sw.style.background=color;sp.appendChild(sw);"
"sp.appendChild(document.createTextNode(name+': '+n));lg.appendChild(sp);}}\n"
"function show(s){$('mnt').textContent=s.mountpoint;const st=$('state');st.textContent=s.state;"
"st.className='st '+s.state;\n"
"const on=s.suppliers.filter(p=>p.state==='online'||p.state==='spare').length;"
"$('summary').textContent=on+' of '+s.suppliers.length+' suppliers online';\n"
"suppliers(s);blocks(s);\n"
"const up=s.blocks.pending+s.uploading;bar('upbar',s.uploaded,s.uploaded+up);"
"$('uptext').textContent=s.uploaded+' blocks uploaded, '+s.uploading+' uploading, '+"
"s.blocks.pending+' waiting in the journal ('+bytes(s.journal_bytes)+'), '+s.deduplicated+' deduplicated, '"
"+s.upload_errors+' errors';\n"
"const r=s.rebuild;bar('rbbar',r.blocks,r.blocks+r.queued+r.running);"
"$('rbtext').textContent=r.blocks+' blocks rebuilt ('+bytes(r.bytes)+'), '+r.queued+' queued, '+r.running+"
"' running, '+bytes(r.rate)+'/s; '+s.blocks.needs_rebuild+' blocks need a rebuild';\n"
"$('misc').textContent='audits: '+s.audit.ok+' good, '+s.audit.failed+' failed, '+s.audit.errors+"
"' unanswered; deletes: '+s.deletes.pending+' pending, '+s.deletes.done+' done; cache: '+bytes(s.cache_bytes)+"
"'; block size '+bytes(s.block_size);\n"
"$('updated').textContent='updated '+new Date().toLocaleTimeString();$('err').style.display='none';"
"document.body.dataset.refreshes=Number(document.body.dataset.refreshes)+1;}\n"
"async function refresh(){try{const r=await fetch(location.pathname.replace(/\\/?$/,'/')+'status.json',"
"{cache:'no-store'});if(!r.ok)throw new Error('HTTP '+r.status);show(await r.json());}\n"
"catch(e){const b=$('err');b.textContent='cannot read the status: '+e.message+' (is the mount still there?)';"
"b.style.display='block';}finally{setTimeout(refresh,1000);}}\n"
"refresh();\n"
"</script></body></html>\n";

/* Only the page's own inline parts and same-origin fetches; the token is
 * in the URL, so it is never sent on as a referrer. */
static const char page_csp[] =
	"default-src 'none'; style-src 'unsafe-inline'; "
	"script-src 'unsafe-inline'; connect-src 'self'; "
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned code, const char *type,
    void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!(r = MHD_create_response_from_buffer(len, body, mode))) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy", page_csp);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_text(struct MHD_Connection *c, unsigned code, const char *text)
{
	return reply(c, code, "text/plain; charset=utf-8", (void *)text,
	    strlen(text), MHD_RESPMEM_PERSISTENT);
}

/* The token's segment of url ("/TOKEN/..."): 1 when it is ours, with
 * *rest after it. The comparison takes the same time wherever a guess
 * goes wrong (the length is no secret). */
static int
token_ok(const struct cli_statuspage *sp, const char *url, const char **rest)
{
	size_t n;

	if (url[0] != '/')
		return 0;
	url++;
	n = strcspn(url, "/");
	if (n != TOKEN_HEX || sodium_memcmp(url, sp->token, TOKEN_HEX) != 0)
		return 0;
	*rest = url + n;
	return 1;
}

static enum MHD_Result
serve(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct cli_statuspage *sp = cls;
	const char *rest;
	char *json;
	size_t len;
	int rc;

	if (!token_ok(sp, url, &rest))
		return reply_text(c, MHD_HTTP_FORBIDDEN, "forbidden: this page "
		    "needs the token printed by `peerfs mount` (and in "
		    "mount.log)\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "read-only: GET only\n");
	if (!strcmp(rest, "") || !strcmp(rest, "/"))
		return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8",
		    (void *)page_html, sizeof page_html - 1,
		    MHD_RESPMEM_PERSISTENT);
	if (strcmp(rest, "/status.json") != 0)
		return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
	if ((rc = owner_status(sp->owner, sp->mnt, 0, &json, &len)) < 0) {
		log_warn("status page: status: %s", strerror(-rc));
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "the status could not be read (see mount.log)\n");
	}
	return reply(c, MHD_HTTP_OK, "application/json", json, len,
	    MHD_RESPMEM_MUST_FREE);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[300];

	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn("status page: %s", line);
}

int
cli_statuspage_addr(const char *hostport, struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(hostport, ':');
	size_t hl;
	uint64_t port;

	memset(ss, 0, sizeof *ss);
	if (!colon || (hl = (size_t)(colon - hostport)) >= sizeof host ||
	    cli_parse_count(colon + 1, &port) < 0 || port > 65535) {
		fprintf(stderr, "peerfs mount: --status-page %s: not ADDRESS:PORT "
		    "(127.0.0.1:8080, [::1]:8080)\n", hostport);
		return -EINVAL;
	}
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1) {
			if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
				goto not_loopback;
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((uint16_t)port);
			return 0;
		}
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
			if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
				goto not_loopback;
			a4->sin_family = AF_INET;
			a4->sin_port = htons((uint16_t)port);
			return 0;
		}
	}
	fprintf(stderr, "peerfs mount: --status-page %s: the address must be "
	    "a numeric loopback one (127.0.0.1 or [::1])\n", hostport);
	return -EINVAL;
not_loopback:
	fprintf(stderr, "peerfs mount: --status-page %s: refused, not a "
	    "loopback address: the page listens on 127.0.0.1 or [::1] only, "
	    "so that it is never on the network\n", hostport);
	return -EINVAL;
}

int
cli_statuspage_start(struct cli_statuspage **out, struct owner *o,
    const char *mnt, const char *hostport, char *url, size_t urlsize)
{
	struct sockaddr_storage ss;
	struct cli_statuspage *sp;
	const union MHD_DaemonInfo *info;
	unsigned char raw[TOKEN_BYTES];
	char host[INET6_ADDRSTRLEN];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int v6;

	*out = NULL;
	if (cli_statuspage_addr(hostport, &ss) < 0)
		return -EINVAL;
	if (!(sp = calloc(1, sizeof *sp)) || !(sp->mnt = strdup(mnt))) {
		free(sp);
		return -ENOMEM;
	}
	sp->owner = o;
	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(sp->token, sizeof sp->token, raw, sizeof raw);
	sodium_memzero(raw, sizeof raw);
	v6 = ss.ss_family == AF_INET6;
	if (v6)
		flags |= MHD_USE_IPv6;
	/* One thread of libmicrohttpd's own polls and answers: requests are
	 * rare and owner_status() is quick, so no pool. */
	sp->d = MHD_start_daemon(flags, 0, NULL, NULL, serve, sp,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_END);
	if (!sp->d) {
		log_error("status page: cannot listen on %s (is the port in "
		    "use?)", hostport);
		cli_statuspage_stop(sp);
		return -EADDRINUSE;
	}
	info = MHD_get_daemon_info(sp->d, MHD_DAEMON_INFO_BIND_PORT);
	if (v6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    host, sizeof host);
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
		    sizeof host);
	snprintf(url, urlsize, "http://%s%s%s:%u/%s/", v6 ? "[" : "", host,
	    v6 ? "]" : "", info ? (unsigned)info->port : 0u, sp->token);
	*out = sp;
	return 0;
}

void
cli_statuspage_stop(struct cli_statuspage *sp)
{
	if (!sp)
		return;
	if (sp->d)
		MHD_stop_daemon(sp->d);
	sodium_memzero(sp->token, sizeof sp->token);
	free(sp->mnt);
	free(sp);
}
