/*
 * admin/agg_batch.h
 *      One usage batch summed per hour x user x key x model x endpoint,
 *      and its JSON form for tg_api.usage_ingest.
 *
 * NOTES
 *      Admin only; pure memory, no I/O.  The JSON is a parameter of one
 *      constant statement, never SQL text.
 */
#ifndef TG_ADMIN_AGG_BATCH_H
#define TG_ADMIN_AGG_BATCH_H

#include "core/buf.h"
#include "core/conf.h"
#include "shm/ring.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct tg_agg_batch_s tg_agg_batch_t;

/* An empty batch; <detail>: also keep one row per record.  NULL when out
 * of memory. */
tg_agg_batch_t *tg_agg_batch_create(const tg_conf_t *conf, bool detail);
void tg_agg_batch_destroy(tg_agg_batch_t *b);

/* Empty <b> for the next batch. */
void tg_agg_batch_reset(tg_agg_batch_t *b);

/* Add one record.  TG_OK, or TG_ERROR when out of memory. */
int tg_agg_batch_add(tg_agg_batch_t *b, const tg_usage_rec_t *r);

/* Records and rows in <b>. */
uint64_t tg_agg_batch_records(const tg_agg_batch_t *b);
uint32_t tg_agg_batch_rows(const tg_agg_batch_t *b);

/*
 * The argument of tg_api.usage_ingest for <b> as batch <batch_id> of
 * <host>, NUL-terminated, into <out> (reset first).  TG_OK, or TG_ERROR
 * when out of memory or past <out>'s bound.
 */
int tg_agg_batch_json(const tg_agg_batch_t *b, const char *batch_id,
                      const char *host, tg_buf_t *out);

/* The model name of <r> made safe for a text column (at most 63 bytes,
 * control characters as '?') into <out> of 64 bytes. */
void tg_agg_batch_model(const tg_usage_rec_t *r, char out[64]);

/* Cost of <r> in pico-dollars, and whether it had no price. */
uint64_t tg_agg_batch_cost(const tg_usage_rec_t *r, bool *unpriced);

#endif /* TG_ADMIN_AGG_BATCH_H */
