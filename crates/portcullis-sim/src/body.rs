//! A response body fed from a channel, so a task can produce chunks at its own pace and learn
//! when the client went away (the send fails once hyper drops the body).

use bytes::Bytes;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

pub(crate) type ChunkResult = Result<Bytes, std::io::Error>;

pub(crate) struct ChannelBody {
    pub(crate) rx: mpsc::Receiver<ChunkResult>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(Frame::data)))
    }
}
