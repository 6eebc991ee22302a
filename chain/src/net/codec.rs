//! The request-response wire format: one request or response per stream, raw bytes, bounded.
//!
//! **Owns**: reading and writing request and response bodies under the configured size limits. A stream carries
//! exactly one message and the writer closes it, so no length prefix is needed: the reader stops one byte past
//! the limit and refuses the message if it got that far. A response starts with one marker byte
//! ([`ANSWER`]): a peer that refuses a request closes the stream without writing anything, and that must not
//! read as an empty answer.
//!
//! **Must never**: buffer more than `limit + 1` bytes of a peer's message, or interpret the bytes.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;

/// Raw-bytes codec with separate request and response limits.
#[derive(Clone, Debug)]
pub struct BytesCodec {
    /// Largest request accepted.
    pub max_request: usize,
    /// Largest response accepted.
    pub max_response: usize,
}

/// First byte of every response.
pub const ANSWER: u8 = 1;

/// Read one whole message, refusing it once it exceeds `limit` bytes.
pub async fn read_bounded<T: AsyncRead + Unpin>(io: &mut T, limit: usize, what: &str) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    io.take(cap).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        tracing::warn!(target: "chain::net", limit, "refused a {what} over the size limit");
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} exceeds {limit} bytes"),
        ));
    }
    Ok(buf)
}

async fn write_all_and_close<T: AsyncWrite + Unpin>(io: &mut T, data: &[u8]) -> io::Result<()> {
    io.write_all(data).await?;
    io.close().await
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bounded(io, self.max_request, "request").await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut marker = [0u8; 1];
        match io.read_exact(&mut marker).await {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the peer refused the request",
            )),
            Err(e) => Err(e),
            Ok(()) if marker[0] != ANSWER => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response without the answer marker",
            )),
            Ok(()) => read_bounded(io, self.max_response, "response").await,
        }
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all_and_close(io, &req).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&[ANSWER]).await?;
        write_all_and_close(io, &res).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test panics by design
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use request_response::Codec as _;

    fn codec(max_request: usize, max_response: usize) -> (BytesCodec, StreamProtocol) {
        (
            BytesCodec {
                max_request,
                max_response,
            },
            StreamProtocol::new("/test/1"),
        )
    }

    #[test]
    fn messages_up_to_the_limit_pass_and_larger_ones_are_refused() {
        let (mut codec, proto) = codec(10, 20);
        for (len, request_ok, response_ok) in [
            (0, true, true),
            (10, true, true),
            (11, false, true),
            (21, false, false),
        ] {
            let data = vec![0x5a; len];
            let req = block_on(codec.read_request(&proto, &mut Cursor::new(data.clone())));
            let framed = [&[ANSWER][..], &data].concat();
            let res = block_on(codec.read_response(&proto, &mut Cursor::new(framed)));
            assert_eq!(req.is_ok(), request_ok, "request of {len} bytes");
            assert_eq!(res.is_ok(), response_ok, "response of {len} bytes");
            if let Ok(bytes) = req {
                assert_eq!(bytes, data);
            }
            if let Err(e) = res {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            }
        }
    }

    #[test]
    fn written_bytes_read_back_unchanged() {
        let (mut codec, proto) = codec(1 << 20, 1 << 20);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_request(&proto, &mut wire, data.clone())).unwrap();
        let back = block_on(codec.read_request(&proto, &mut Cursor::new(wire.into_inner()))).unwrap();
        assert_eq!(back, data);

        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_response(&proto, &mut wire, data.clone())).unwrap();
        let back = block_on(codec.read_response(&proto, &mut Cursor::new(wire.into_inner()))).unwrap();
        assert_eq!(back, data);
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_response(&proto, &mut wire, Vec::new())).unwrap();
        assert_eq!(
            block_on(codec.read_response(&proto, &mut Cursor::new(wire.into_inner()))).unwrap(),
            b""
        );
    }

    #[test]
    fn a_refusal_is_not_an_empty_answer() {
        let (mut codec, proto) = codec(10, 10);
        let refused = block_on(codec.read_response(&proto, &mut Cursor::new(Vec::new()))).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        let unmarked = block_on(codec.read_response(&proto, &mut Cursor::new(vec![7, 1, 2]))).unwrap_err();
        assert_eq!(unmarked.kind(), io::ErrorKind::InvalidData);
    }
}
