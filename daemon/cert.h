/*
 * Certificate facts from a DER leaf, and the trust-on-first-use store
 * (state-dir/known_hosts): per host:port the first-seen certificate and
 * public-key fingerprints, first-seen time and not_after.
 */
#ifndef GEMWATCH_CERT_H
#define GEMWATCH_CERT_H

#include <stddef.h>

#include "result.h"

/*
 * Fill f from the DER leaf certificate; hostname is checked against it
 * (may be NULL: no check, hostname_match 0). Returns 0, or -1 when the
 * certificate cannot be parsed. f's strings are owned by the result.
 */
int cert_facts_from_der(const unsigned char *der, size_t len,
    const char *hostname, struct cert_facts *f);

struct tofu_store;

/*
 * Open the store kept in dir/known_hosts (dir NULL: memory only; writable
 * 0: the file is read, and re-read when replaced, but new pins stay in
 * memory). A missing file is an empty store; an unreadable one is logged
 * and set aside. Never fails.
 */
struct tofu_store *tofu_open(const char *dir, int writable);
/* Write what is pending and free; 0, or -1 when the write failed. */
int tofu_free(struct tofu_store *);
/*
 * Compare f with what is known of host:port and set f->tofu (NEW, MATCH
 * or CHANGED) and f->key_kept; a new host:port is recorded and saved.
 * Thread-safe.
 */
void tofu_check(
    struct tofu_store *, const char *host, int port, struct cert_facts *f);
/*
 * Call about once a second: writes pending new entries, or re-reads the
 * file when another process (gemwatch trust) replaced it.
 */
void tofu_flush(struct tofu_store *);
/*
 * Forget host:port so the next certificate seen is trusted afresh, and
 * save. Returns 0, or -1 when it was not known.
 */
int tofu_forget(struct tofu_store *, const char *host, int port);

#endif
