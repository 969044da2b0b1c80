"""CLI sub-commands, one module per area; each is thin glue over functions in `disfer`."""
