use bytes::BytesMut;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    time::timeout,
};

use std::{
    collections::VecDeque,
    io::{self, ErrorKind},
};
use tokio::time::{error::Elapsed, Duration};

use crate::hooks::DISCARDED_TOPIC;
use crate::protocol::{self, Packet, Protocol, Publish, QoS};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O = {0}")]
    Io(#[from] io::Error),
    #[error("Invalid data = {0}")]
    Protocol(#[from] protocol::Error),
    #[error["Keep alive timeout"]]
    KeepAlive(#[from] Elapsed),
}

/// Network transforms packets <-> frames efficiently. It takes
/// advantage of pre-allocation, buffering and vectorization when
/// appropriate to achieve performance
pub struct Network<P> {
    /// Socket for IO
    socket: Box<dyn N>,
    /// Buffered reads
    read: BytesMut,
    /// Buffered writes
    write: BytesMut,
    /// Maximum packet size
    max_incoming_size: usize,
    /// Maximum connection buffer count. TODO: Change this to use bytes for deterministicness
    max_connection_buffer_len: usize,
    /// Keep alive timeout
    keepalive: Duration,
    /// Protocol
    protocol: P,
    /// Bytes of an oversized publish still to be dropped from the socket (biogestor patch).
    skip: usize,
    /// Topic and size of each oversized publish dropped since the last `take_oversized`.
    oversized: Vec<(String, usize)>,
}

impl<P: Protocol> Network<P> {
    pub fn new(
        socket: Box<dyn N>,
        max_incoming_size: usize,
        max_connection_buffer_len: usize,
        protocol: P,
    ) -> Network<P> {
        Network {
            socket,
            read: BytesMut::with_capacity(10 * 1024),
            write: BytesMut::with_capacity(10 * 1024),
            max_incoming_size,
            max_connection_buffer_len,
            // Overwritten by keepalive value in connect packet, otherwise we
            // would wait indefinitely until we get a packet / network error
            // when we call read.
            keepalive: Duration::MAX,
            protocol,
            skip: 0,
            oversized: Vec::new(),
        }
    }

    pub fn set_keepalive(&mut self, keepalive: u16) {
        // Keep alive 0 turns the mechanism off (MQTT 3.1.1 §3.1.2.10): no read timeout.
        if keepalive == 0 {
            self.keepalive = Duration::MAX;
            return;
        }
        let keepalive = Duration::from_secs(keepalive as u64);
        self.keepalive = keepalive + keepalive.mul_f32(0.5);
    }

    /// Topic and size of the oversized publishes dropped since the last call.
    pub fn take_oversized(&mut self) -> Vec<(String, usize)> {
        std::mem::take(&mut self.oversized)
    }

    /// Drops the buffered bytes of an oversized publish that is being skipped.
    fn discard_skipped(&mut self) {
        let n = self.skip.min(self.read.len());
        let _ = self.read.split_to(n);
        self.skip -= n;
    }

    /// Turns an oversized PUBLISH at the head of the read buffer into a payload-less publish
    /// on the discard topic, so that the router acknowledges it in order while its bytes are
    /// skipped instead of read into memory. `None`: more bytes are needed to see its packet id.
    /// Any other oversized packet stays a protocol error.
    fn oversized_publish(&mut self, size: usize) -> Result<Option<Packet>, Error> {
        let head = &self.read[..];
        let byte1 = head[0];
        if byte1 >> 4 != 3 {
            return Err(protocol::Error::PayloadSizeLimitExceeded(size).into());
        }
        let mut header_len = 1;
        while head.get(header_len).is_some_and(|b| b & 0x80 != 0) {
            header_len += 1;
        }
        header_len += 1;
        let qos = (byte1 & 0b0110) >> 1;
        let Some(qos) = protocol::qos(qos) else {
            return Err(protocol::Error::InvalidQoS(qos).into());
        };
        let Some(topic_len) = head.get(header_len..header_len + 2) else {
            return Ok(None);
        };
        let topic_len = u16::from_be_bytes([topic_len[0], topic_len[1]]) as usize;
        let topic_end = header_len + 2 + topic_len;
        let id_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
        let Some(pkid) = head.get(topic_end..topic_end + id_len) else {
            return Ok(None);
        };
        let pkid = if id_len == 0 {
            0
        } else {
            u16::from_be_bytes([pkid[0], pkid[1]])
        };
        let topic = String::from_utf8_lossy(&head[header_len + 2..topic_end]).into_owned();
        self.oversized.push((topic, size));
        self.skip = header_len + size;
        self.discard_skipped();
        let publish = Publish {
            dup: byte1 & 0b1000 != 0,
            qos,
            retain: false,
            topic: bytes::Bytes::from_static(DISCARDED_TOPIC),
            pkid,
            payload: bytes::Bytes::new(),
        };
        Ok(Some(Packet::Publish(publish, None)))
    }

    /// Reads more than 'required' bytes to frame a packet into self.read buffer
    async fn read_bytes(&mut self, required: usize) -> io::Result<usize> {
        // TODO: Fix this cancellation bug and write unit test
        let mut total_read = 0;
        loop {
            let read = self.socket.read_buf(&mut self.read).await?;
            if 0 == read {
                let error = if self.read.is_empty() {
                    io::Error::new(ErrorKind::ConnectionAborted, "connection closed by peer")
                } else {
                    io::Error::new(ErrorKind::ConnectionReset, "connection reset by peer")
                };

                return Err(error);
            }

            total_read += read;
            if total_read >= required {
                return Ok(total_read);
            }
        }
    }

    /// Waits on network for 1 packet
    pub async fn read(&mut self) -> Result<Packet, Error> {
        loop {
            self.discard_skipped();
            let required = if self.skip > 0 {
                1
            } else {
                match Protocol::read_mut(
                    &mut self.protocol,
                    &mut self.read,
                    self.max_incoming_size,
                ) {
                    Ok(packet) => return Ok(packet),
                    Err(protocol::Error::InsufficientBytes(required)) => required,
                    Err(protocol::Error::PayloadSizeLimitExceeded(size)) => {
                        match self.oversized_publish(size)? {
                            Some(packet) => return Ok(packet),
                            None => 1,
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            };

            // read more packets until a frame can be created. This function
            // blocks until a frame can be created. Use this in a select! branch
            timeout(self.keepalive, self.read_bytes(required)).await??;
        }
    }

    /// Read packets in bulk. This allow replies to be in bulk. This method is used
    /// after the connection is established to read a bunch of incoming packets
    pub fn readv(&mut self, packets: &mut VecDeque<Packet>) -> Result<usize, Error> {
        loop {
            self.discard_skipped();
            if self.skip > 0 {
                return Ok(packets.len());
            }
            let packet = match self
                .protocol
                .read_mut(&mut self.read, self.max_incoming_size)
            {
                Err(protocol::Error::PayloadSizeLimitExceeded(size)) => {
                    match self.oversized_publish(size)? {
                        Some(packet) => Ok(packet),
                        None => return Ok(packets.len()),
                    }
                }
                other => other,
            };
            match packet {
                Ok(packet) => {
                    packets.push_back(packet);
                    let connection_buffer_length = packets.len();
                    if connection_buffer_length >= self.max_connection_buffer_len {
                        return Ok(connection_buffer_length);
                    }
                }
                Err(protocol::Error::InsufficientBytes(_)) => return Ok(packets.len()),
                Err(e) => return Err(io::Error::new(ErrorKind::InvalidData, e.to_string()).into()),
            }
        }
    }

    pub async fn write(&mut self, packet: Packet) -> Result<(), Error> {
        Protocol::write(&self.protocol, packet, &mut self.write)?;
        self.socket.write_all(&self.write).await?;
        self.write.clear();
        Ok(())
    }

    pub async fn writev(&mut self, packets: VecDeque<Packet>) -> Result<(), Error> {
        for packet in packets {
            Protocol::write(&self.protocol, packet, &mut self.write)?;
        }
        self.socket.write_all(&self.write).await?;
        self.write.clear();
        Ok(())
    }
}

pub trait N: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T> N for T where T: AsyncRead + AsyncWrite + Unpin + Send {}
