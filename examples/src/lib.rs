//! Runnable examples of the Snoopy libraries: see `examples/`.
