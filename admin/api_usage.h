/*
 * admin/api_usage.h
 *      Admin API: the field specs of /admin/api/usage and
 *      /admin/api/prices, for the route table (admin/api_routes.c).
 *
 * NOTES
 *      Admin only.  Each route is one tg_api call (sql/functions/
 *      70_usage.sql); mutations of prices are for administrators and
 *      write their audit row in the same transaction.
 */
#ifndef TG_ADMIN_API_USAGE_H
#define TG_ADMIN_API_USAGE_H

#include "admin/api_spec.h"

extern const tg_api_field_t tg_api_q_usage[];  /* GET /admin/api/usage */
extern const tg_api_field_t tg_api_q_prices[]; /* GET /admin/api/prices */
extern const tg_api_field_t tg_api_b_price[];  /* POST and PATCH bodies */

#endif /* TG_ADMIN_API_USAGE_H */
