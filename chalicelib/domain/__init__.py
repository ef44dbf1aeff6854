"""Pure domain rules: no AWS, no I/O, unit-tested on their own."""
