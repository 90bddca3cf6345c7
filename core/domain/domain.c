/*
 * domain.c - registration of the domain model's endpoints, in an order
 * that keeps literal path segments ahead of :id patterns.
 */
#include "domain/domain.h"
#include "domain/crud.h"

void domain_api_init(void)
{
    crud_entities_init();
    import_api_init(); /* /users/import before /users/:id */
    users_api_init();
    sounds_api_init();
    callctl_api_init();
}
