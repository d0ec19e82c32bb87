//! Decoding packets into tcpdump-style one-line summaries and JSON.
