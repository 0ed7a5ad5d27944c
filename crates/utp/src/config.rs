//! Settings of connections and of the endpoint.
use crate::ledbat::LedbatConfig;
use std::time::Duration;

/// Settings of every connection of an endpoint.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Congestion control.
    pub ledbat: LedbatConfig,
    /// Receive buffer, bytes: the window advertised to the peer (data read
    /// in order but not yet taken by the application, plus packets held
    /// out of order).
    pub recv_buffer: usize,
    /// Send buffer, bytes written by the application and not yet packetised.
    pub send_buffer: usize,
    /// Datagram size every path is assumed to carry (the MTU search floor).
    pub mtu_floor: u16,
    /// Largest datagram over IPv4 (1500 − 20 − 8).
    pub mtu_ceiling_v4: u16,
    /// Largest datagram over IPv6 (1500 − 40 − 8).
    pub mtu_ceiling_v6: u16,
    /// Nagle: hold a short packet while another short one is in flight.
    pub nagle: bool,
    /// Retransmission timeout before an RTT is measured (and of the SYN).
    pub initial_rto: Duration,
    /// Least retransmission timeout (BEP 29: 500 ms).
    pub min_rto: Duration,
    /// Greatest retransmission timeout, after back-off.
    pub max_rto: Duration,
    /// Consecutive timeouts without any answer after which the connection is dead.
    pub max_timeouts: u32,
    /// SYN transmissions before connecting fails (the timeout doubles each time).
    pub max_syn_transmissions: u32,
    /// How long an accepted connection waits for its peer's first packet
    /// after the SYN (the SYN-ACK is answered again on every repeated SYN);
    /// longer than the initiator waits between its last two SYNs.
    pub half_open_timeout: Duration,
    /// Most packets held out of order (the reorder window).
    pub max_reorder: usize,
    /// Most packets in flight (unacknowledged), a bound well inside the
    /// 16-bit sequence space.
    pub max_in_flight_packets: usize,
    /// Largest selective-ACK bitmask sent, bytes (multiple of 4).
    pub max_sack_bytes: usize,
    /// How long a cleanly closed connection stays after the peer's last
    /// packet, to acknowledge it again if our ACK was lost (at least four
    /// RTOs); also how long a released connection waits for the peer's FIN.
    pub linger: Duration,
    /// This endpoint reads runs of datagrams coalesced (UDP GRO): said to
    /// peers in the handshake ([`crate::packet::BIT_COALESCED_READS`]) so
    /// that they may send it GSO bursts. The driver sets it.
    pub coalesced_reads: bool,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            ledbat: LedbatConfig::default(),
            recv_buffer: 1 << 20,
            send_buffer: 1 << 20,
            mtu_floor: 1220,
            mtu_ceiling_v4: 1472,
            mtu_ceiling_v6: 1452,
            nagle: true,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(500),
            max_rto: Duration::from_secs(60),
            max_timeouts: 5,
            max_syn_transmissions: 3,
            half_open_timeout: Duration::from_secs(5),
            max_reorder: 1024,
            max_in_flight_packets: 8192,
            max_sack_bytes: 128,
            linger: Duration::from_secs(15),
            coalesced_reads: false,
        }
    }
}

/// Settings of an [`crate::Endpoint`].
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Settings of every connection.
    pub connection: ConnectionConfig,
    /// Accept incoming connections at all.
    pub accept: bool,
    /// Most connections, any state.
    pub max_connections: usize,
    /// Most incoming connections whose peer has not yet sent anything after
    /// its SYN (a SYN flood fills this and nothing else).
    pub max_half_open: usize,
    /// Most such half-open connections from one IP address.
    pub max_half_open_per_ip: usize,
    /// Most accepted connections the application has not yet taken.
    pub accept_backlog: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            connection: ConnectionConfig::default(),
            accept: true,
            max_connections: 4096,
            max_half_open: 128,
            max_half_open_per_ip: 8,
            accept_backlog: 64,
        }
    }
}
