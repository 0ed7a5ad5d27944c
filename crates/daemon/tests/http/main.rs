//! The daemon's HTTP tests, one binary (the daemon is linked once, not once
//! per file): Transmission RPC as clients send it, hostile requests, the web
//! UI's endpoints and streaming.

mod common;
mod dht_publish;
mod groups;
mod hostile_http;
mod rpc_clients;
mod rpc_spec;
mod search_errors;
mod stream_http;
mod ui_http;
