//! Response bodies: in-memory content, or a file streamed in chunks so a
//! large file in `http_directory` (a kernel, an initrd) is never held whole.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

const CHUNK: usize = 64 * 1024;

pub(crate) enum ServeBody {
    Empty,
    Full(Bytes),
    File {
        file: tokio::fs::File,
        remaining: u64,
    },
}

impl ServeBody {
    pub(crate) fn file(file: tokio::fs::File, len: u64) -> Self {
        ServeBody::File {
            file,
            remaining: len,
        }
    }
}

impl Body for ServeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        match this {
            ServeBody::Empty => Poll::Ready(None),
            ServeBody::Full(bytes) => {
                if bytes.is_empty() {
                    return Poll::Ready(None);
                }
                let data = std::mem::take(bytes);
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            ServeBody::File { file, remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let want = usize::try_from(*remaining).map_or(CHUNK, |r| r.min(CHUNK));
                let mut buffer = BytesMut::zeroed(want);
                let mut read = ReadBuf::new(&mut buffer);
                match Pin::new(file).poll_read(cx, &mut read) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok(())) => {
                        let n = read.filled().len();
                        if n == 0 {
                            // The file shrank after its length was sent.
                            return Poll::Ready(Some(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file shrank while being served",
                            ))));
                        }
                        *remaining -= n as u64;
                        buffer.truncate(n);
                        Poll::Ready(Some(Ok(Frame::data(buffer.freeze()))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ServeBody::Empty => true,
            ServeBody::Full(bytes) => bytes.is_empty(),
            ServeBody::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ServeBody::Empty => SizeHint::with_exact(0),
            ServeBody::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            ServeBody::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
