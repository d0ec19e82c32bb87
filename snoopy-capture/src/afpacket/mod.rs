//! Live capture from AF_PACKET sockets with a TPACKET_V3 ring.
