/* not_a_plugin - a shared object without the cw_plugin symbol. */
__attribute__((visibility("default"))) int not_a_plugin_answer(void)
{
    return 42;
}
