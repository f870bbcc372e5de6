/* tests/unit/test_log.c - log_peer_text: what a peer sends reaches a log
 * line printable and bounded. */
#include <string.h>

#include "log.h"
#include "tests/unit/test.h"

static int
test_peer_text(void)
{
	char out[LOG_PEER_TEXT_MAX + 1], small[8], big[1000];
	static const char evil[] = "quota\x1b[2J\x1b]0;pwned\x07\nfake line\r\x7f\xc3\xa9";
	const char *r;

	r = log_peer_text(out, sizeof out, "quota exceeded", 14);
	CHECK(r == out);
	CHECK(strcmp(out, "quota exceeded") == 0);
	/* Escapes, bell, newline, DEL and non-ASCII bytes all become '?'. */
	log_peer_text(out, sizeof out, evil, sizeof evil - 1);
	CHECK_EQ(strlen(out), sizeof evil - 1);
	for (size_t i = 0; out[i]; i++)
		CHECK(out[i] >= 0x20 && out[i] < 0x7f);
	CHECK(strchr(out, '\n') == NULL && strchr(out, 0x1b) == NULL);
	CHECK(strncmp(out, "quota?[2J?]0;pwned??fake line????", 33) == 0);
	/* A NUL inside is no end of the text for the peer: it is shown. */
	log_peer_text(out, sizeof out, "a\0b", 3);
	CHECK(strcmp(out, "a?b") == 0);
	/* Capped by the buffer, and by LOG_PEER_TEXT_MAX whatever it is. */
	log_peer_text(small, sizeof small, "0123456789", 10);
	CHECK(strcmp(small, "0123...") == 0);
	memset(big, 'x', sizeof big);
	char large[2 * LOG_PEER_TEXT_MAX];
	log_peer_text(large, sizeof large, big, sizeof big);
	CHECK_EQ(strlen(large), LOG_PEER_TEXT_MAX);
	CHECK(strcmp(large + LOG_PEER_TEXT_MAX - 3, "...") == 0);
	log_peer_text(out, sizeof out, NULL, 5);
	CHECK(strcmp(out, "") == 0);
	return 0;
}

const struct test tests_log[] = {
	{ "peer_text", test_peer_text },
	{ NULL, NULL },
};
