//! The engine's integration tests, one binary (the engine is linked once,
//! not once per file): sessions, swarms over loopback, PEX, readers and the
//! swarm simulation.

mod dormant;
mod extension;
mod groups;
mod pex;
mod reader;
mod session;
mod stalled_peer;
mod swarm;
mod swarm_sim;
mod util;
