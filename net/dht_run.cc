// net/dht_run.cc - the one thing OpenDHT's C API cannot do: start a runner
// bound to one address (dht_runner_run_config binds 0.0.0.0 and [::] on a
// port). DhtRunner::Config has bind4/bind6; the C API's dht_runner is a
// dht::DhtRunner underneath (opendht_c.cpp casts the same way).
#include <cerrno>
#include <exception>
#include <sys/socket.h>

#include <opendht/dhtrunner.h>
#include <opendht/opendht_c.h>

extern "C" int net__dht_run_bound(dht_runner *r, const struct sockaddr *sa,
    socklen_t len, uint32_t network);

extern "C" int
net__dht_run_bound(dht_runner *r, const struct sockaddr *sa, socklen_t len,
    uint32_t network)
{
	try {
		auto *runner = reinterpret_cast<dht::DhtRunner *>(r);
		dht::DhtRunner::Config cfg;
		cfg.dht_config.node_config.network = network;
		cfg.threaded = true;
		cfg.peer_discovery = false;	// no multicast: only our bootstraps
		cfg.peer_publish = false;
		if (sa->sa_family == AF_INET)
			cfg.bind4 = dht::SockAddr(sa, len);
		else
			cfg.bind6 = dht::SockAddr(sa, len);
		runner->run(cfg, dht::DhtRunner::Context {});
		return 0;
	} catch (const std::exception &) {
		// OpenDHT says only "can't bind": the usual reason.
		return -EADDRINUSE;
	}
}
