/*
 * admin/metrics.h
 *      GET /metrics: the Prometheus text exposition (format 0.0.4) of the
 *      shared counters, gauges and histograms.
 *
 * NOTES
 *      Admin only.  Everything is read from shared memory when scraped
 *      (the workers' per-process rows, the endpoint table, the process
 *      table, the usage ring) plus what admin itself knows (database
 *      state, usage drained, spool files, flushes): a scrape costs the
 *      workers nothing.  See docs/metrics.md for every series.
 */
#ifndef TG_ADMIN_METRICS_H
#define TG_ADMIN_METRICS_H

#include "core/buf.h"
#include "core/conf.h"
#include "shm/shm.h"

#include <stdbool.h>
#include <stdint.h>

#define TG_METRICS_MAX          (16u << 20) /* bytes of one exposition */
#define TG_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Escape label value <s> into <out> of <cap> (at least 4) bytes,
 * NUL-terminated: backslash, double quote and line feed escaped, any
 * byte that is not valid UTF-8 (a model name cut mid-character, a peer's
 * bytes) replaced with '?', cut when <out> is full.
 */
void tg_metrics_escape(const char *s, char *out, size_t cap);

/*
 * Render the exposition for <conf> and <shm> into <out> (appended; bounded
 * by the buffer's max).  TG_OK, or TG_ERROR when out of memory or past the
 * bound.
 */
int tg_metrics_render(const tg_conf_t *conf, tg_shm_t *shm, tg_buf_t *out);

#endif /* TG_ADMIN_METRICS_H */
