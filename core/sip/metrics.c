/*
 * metrics.c - cw_registrations{domain}: live SIP contacts per tenant,
 * read from the store just before /metrics is rendered (core thread).
 */
#include "metrics/metrics.h"
#include "sip/sip.h"
#include "store/store.h"

static void collect(void *arg)
{
    metric *m = metrics_gauge("cw_registrations", "Registered SIP contacts", "domain");
    metrics_clear(m);
    store_res *r;
    if (store_query(store_main(), &r,
                    "SELECT d.name, COUNT(*) FROM registrations g JOIN domains d ON "
                    "d.id = g.domain_id WHERE g.expires_at > ? GROUP BY d.name",
                    SA_INT(cw_wall_time()), SA_END) < 0)
        return;
    while (store_next(r))
        metrics_set(m, (double)store_int(r, 1), store_str(r, 0));
    store_res_free(r);
}

void sip_metrics_init(void)
{
    metrics_on_collect(collect, NULL);
}
