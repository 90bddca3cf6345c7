/*
 * http_int.h - what the files of the HTTP edge share; not for use outside http/.
 */
#ifndef CW_HTTP_INT_H
#define CW_HTTP_INT_H

#include <stdint.h>

int64_t http_uptime_ms(void);
void http_routes_free(void);
/* Built-in endpoints: /health, /api/v1/openapi.json, /api/v1/events. */
void http_builtin_init(void);
void http_sse_init(void);
void http_sse_shutdown(void);
int http_sse_clients(void);

#endif
