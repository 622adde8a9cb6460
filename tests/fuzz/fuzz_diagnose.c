/*
 * Fuzz target for diag_report_from_json, the reader of the diagnose
 * reports kept in state-dir: arbitrary bytes are parsed as JSON and read
 * as a report. It must never crash; what it reads must hold together
 * (known check names, verdict counts that add up, statuses that are
 * statuses), and writing it out and reading that back must give the
 * same document.
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "diagnose.h"
#include "fuzz.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag_report rep, again;
	struct buf b;
	json_t *j, *out, *out2;
	char *s1, *s2;
	size_t i, sum;

	j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (j == NULL)
		return 0;
	diag_report_init(&rep);
	diag_report_init(&again);
	if (diag_report_from_json(j, &rep) == 0) {
		CHECK(rep.n <= diag_checks());
		for (i = 0, sum = 0; i < DIAG__COUNT; i++)
			sum += rep.count[i];
		CHECK(sum == rep.n);
		for (i = 0; i < rep.n; i++) {
			CHECK(diag_check_find(rep.o[i].name) >= 0);
			CHECK(rep.o[i].verdict < DIAG__COUNT);
			CHECK(rep.o[i].status == -1 ||
			      (rep.o[i].status >= 10 && rep.o[i].status <= 69));
			CHECK(rep.o[i].why != NULL);
		}
		buf_init(&b);
		diag_summary(&rep, &b);
		CHECK(b.len > 0 && utf8_valid(b.data, b.len));
		buf_free(&b);
		out = diag_report_json(&rep);
		CHECK(out != NULL);
		CHECK(diag_report_from_json(out, &again) == 0);
		out2 = diag_report_json(&again);
		CHECK(out2 != NULL);
		s1 = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
		s2 = json_dumps(out2, JSON_SORT_KEYS | JSON_COMPACT);
		CHECK(s1 != NULL && s2 != NULL && strcmp(s1, s2) == 0);
		free(s1);
		free(s2);
		json_decref(out);
		json_decref(out2);
	}
	diag_report_free(&rep);
	diag_report_free(&again);
	json_decref(j);
	return 0;
}
