/*
 * admin/api_usage.c
 *      Admin API: field specs of the usage and prices routes.
 *
 * NOTES
 *      Admin only; data, no code.  user_id and key_id are accepted as
 *      other names of user and key; prices take model (the patterns that
 *      match it), and limit and cursor for clients that page (prices come
 *      in one page).  GET /admin/api/usage takes group_by as
 *      one comma-separated list ("day,model"); the database checks its
 *      words (tg_api.usage_list), and a user sees only their own usage.
 *      Prices are decimal strings of US dollars per million tokens with
 *      at most six decimals (a whole number of pico-dollars per token).
 */
#include "admin/api_usage.h"

#include <stddef.h>

#define TG_API_U_END                                                           \
    {                                                                          \
        NULL, 0, 0, 0, 0, NULL, NULL                                           \
    }

const tg_api_field_t tg_api_q_usage[] = {
    {"from", TG_API_F_TIME, 0, 0, 0, NULL, NULL},
    {"to", TG_API_F_TIME, 0, 0, 0, NULL, NULL},
    {"user", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    {"key", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    {"user_id", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    {"key_id", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    {"model", TG_API_F_STRING, 0, 0, 63, NULL, NULL},
    {"endpoint", TG_API_F_STRING, 0, 0, 63, NULL, NULL},
    {"group_by", TG_API_F_STRING, 0, 1, 128, NULL, NULL},
    {"limit", TG_API_F_INT, 0, 1, 10000, NULL, NULL},
    TG_API_U_END};

static const char *const tg_api_bools[] = {"true", "false", NULL};

const tg_api_field_t tg_api_q_prices[] = {
    {"q", TG_API_F_STRING, 0, 1, 63, NULL, NULL},
    {"model", TG_API_F_STRING, 0, 1, 63, NULL, NULL},
    {"all", TG_API_F_ENUM, 0, 0, 0, tg_api_bools, NULL},
    {"limit", TG_API_F_INT, 0, 1, 5000, NULL, NULL},
    {"cursor", TG_API_F_STRING, 0, 0, 64, NULL, NULL},
    TG_API_U_END};

const tg_api_field_t tg_api_b_price[] = {
    {"pattern", TG_API_F_STRING, TG_API_REQUIRED, 1, 63, NULL, NULL},
    {"input_usd_per_mtok", TG_API_F_DECIMAL, TG_API_REQUIRED, 0, 0, NULL, NULL},
    {"output_usd_per_mtok", TG_API_F_DECIMAL, TG_API_REQUIRED, 0, 0, NULL,
     NULL},
    {"cache_read_usd_per_mtok", TG_API_F_DECIMAL, TG_API_REQUIRED, 0, 0, NULL,
     NULL},
    {"cache_write_5m_usd_per_mtok", TG_API_F_DECIMAL, TG_API_REQUIRED, 0, 0,
     NULL, NULL},
    {"cache_write_1h_usd_per_mtok", TG_API_F_DECIMAL, TG_API_REQUIRED, 0, 0,
     NULL, NULL},
    {"effective_from", TG_API_F_TIME, TG_API_NULLABLE, 0, 0, NULL, NULL},
    {"comments", TG_API_F_STRING, 0, 0, 1000, NULL, NULL},
    TG_API_U_END};
