//! Serving one boot file over HTTP: conditional requests (`If-None-Match`, `If-Modified-Since`,
//! `If-Range`), a single byte range (206 / 416), `HEAD`, and a body streamed in large chunks.
//! tower-http's `ServeDir` reads 64 KiB at a time (~550 MB/s here); disk images need more, so the
//! body is read in `CHUNK`-sized blocks on the blocking pool, a block or two ahead of the socket,
//! each handed to hyper without a copy, in buffers reused once hyper has sent them. Multiple ranges
//! are answered with the whole file (200), which RFC 9110 allows; nothing that boots asks for them.
//! Never compressed.

use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

use crate::boot::files::BootFile;

/// Bytes read per blocking call and per body frame (see docs/benchmarks.md, HTTP image serving).
const CHUNK: usize = 2 << 20;
/// Chunks read ahead of the socket.
const AHEAD: usize = 2;

/// Which bytes a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    Whole,
    /// Inclusive first and last byte.
    Part(u64, u64),
    Unsatisfiable,
}

/// Interprets a `Range` header for a file of `len` bytes. Anything but one well-formed `bytes`
/// range is ignored (the whole file), as RFC 9110 §14.2 permits.
pub fn parse_range(value: &str, len: u64) -> ByteRange {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return ByteRange::Whole };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return ByteRange::Whole };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    match (first.is_empty(), num(first), num(last)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Part(len.saturating_sub(n), len - 1)
            }
        }
        (false, Some(a), None) if last.is_empty() => {
            if a >= len {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Part(a, len - 1)
            }
        }
        (false, Some(a), Some(b)) if a <= b => {
            if a >= len {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Part(a, b.min(len - 1))
            }
        }
        _ => ByteRange::Whole,
    }
}

/// `If-None-Match` (weak comparison) against our tag.
fn none_match(value: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    value.trim() == "*" || value.split(',').any(|t| bare(t) == bare(etag))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What was answered, for the boot timeline: `200 1048576 bytes`, `206 bytes 0-1023/1048576`, ...
pub struct Served {
    pub response: Response,
    pub summary: String,
}

/// The response for `file` to a GET or HEAD with `headers`.
pub fn serve(file: BootFile, method: &Method, headers: &HeaderMap, content_type: &'static str) -> Served {
    let len = file.len();
    let etag = file.etag();
    let modified = file.modified();
    let last_modified = modified.map(httpdate::fmt_http_date);

    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(header::CONTENT_TYPE, content_type);
    if let Some(lm) = &last_modified {
        builder = builder.header(header::LAST_MODIFIED, lm);
    }

    let not_modified = match header_str(headers, header::IF_NONE_MATCH) {
        Some(inm) => none_match(inm, &etag),
        None => header_str(headers, header::IF_MODIFIED_SINCE)
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .zip(modified)
            .is_some_and(|(since, m)| httpdate::HttpDate::from(m) <= httpdate::HttpDate::from(since)),
    };
    if not_modified {
        return done(builder.status(StatusCode::NOT_MODIFIED).body(Body::empty()), "304 not modified".into());
    }

    let range = match header_str(headers, header::RANGE) {
        Some(r) if if_range_holds(headers, &etag, last_modified.as_deref()) => parse_range(r, len),
        _ => ByteRange::Whole,
    };
    let (status, start, count) = match range {
        ByteRange::Whole => (StatusCode::OK, 0, len),
        ByteRange::Part(a, b) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{len}"));
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        ByteRange::Unsatisfiable => {
            let r = builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty());
            return done(r, format!("416 range not satisfiable (length {len})"));
        }
    };
    let summary = match range {
        ByteRange::Part(a, b) => format!("206 bytes {a}-{b}/{len}"),
        _ => format!("200 {len} bytes"),
    };
    builder = builder.status(status).header(header::CONTENT_LENGTH, count);
    let body = if method == Method::HEAD || count == 0 { Body::empty() } else { stream(file, start, count) };
    done(builder.body(body), summary)
}

/// `If-Range`: the range applies only if the validator still names this version of the file.
fn if_range_holds(headers: &HeaderMap, etag: &str, last_modified: Option<&str>) -> bool {
    match header_str(headers, header::IF_RANGE) {
        None => true,
        // Strong comparison: a weak tag never matches.
        Some(v) if v.trim_start().starts_with('"') || v.trim_start().starts_with("W/") => v.trim() == etag,
        Some(date) => last_modified.is_some_and(|lm| lm == date.trim()),
    }
}

fn done(r: Result<Response, axum::http::Error>, summary: String) -> Served {
    let response = r.unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    });
    Served { response, summary }
}

/// A body of `count` bytes of `file` from `start`, read a chunk ahead on the blocking pool.
fn stream(file: BootFile, start: u64, count: u64) -> Body {
    let (tx, rx) = mpsc::channel(AHEAD);
    tokio::spawn(async move {
        let pool = BufferPool::default();
        let mut file = file.file;
        let mut offset = start;
        let end = start + count;
        if let Err(e) = std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start)) {
            let _ = tx.send(Err(e)).await;
            return;
        }
        while offset < end {
            let want = usize::try_from(end - offset).unwrap_or(CHUNK).min(CHUNK);
            let mut buf = pool.take();
            let read = tokio::task::spawn_blocking(move || {
                // `read_to_end` on a `File` reads into the spare capacity: no zeroing, no copy.
                let r = (&file).take(want as u64).read_to_end(&mut buf);
                (file, r.map(|_| buf))
            })
            .await;
            let Ok((f, r)) = read else { return };
            file = f;
            let chunk = match r {
                Ok(buf) if buf.len() == want => Ok(pool.bytes(buf)),
                // The file shrank under us: fail the body rather than pad it.
                Ok(_) => Err(std::io::ErrorKind::UnexpectedEof.into()),
                Err(e) => Err(e),
            }
            .map_err(|e| {
                let _ = tx.try_send(Err(e));
            });
            // Stop on a read error, or when the client is gone (the receiver dropped).
            let Ok(chunk) = chunk else { return };
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
            offset += want as u64;
        }
    });
    Body::new(FileBody { rx, remaining: count })
}

/// The chunk buffers of one transfer, reused once hyper has written and dropped them: memory
/// already mapped is cheaper than fresh allocations, each of which page-faults in 512 times.
#[derive(Clone, Default)]
struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().ok().and_then(|mut p| p.pop());
        let mut buf = reused.unwrap_or_else(|| Vec::with_capacity(CHUNK));
        buf.clear();
        buf
    }

    /// `buf` as body bytes that come back here when dropped.
    fn bytes(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled { buf, pool: self.clone() })
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: BufferPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if let Ok(mut p) = self.pool.0.lock()
            && p.len() <= AHEAD + 1
        {
            p.push(buf);
        }
    }
}

struct FileBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    remaining: u64,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(Some(Err(std::io::ErrorKind::UnexpectedEof.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// The content type of a boot file: iPXE scripts are text, everything else is bytes.
pub fn content_type_for(path: &str) -> &'static str {
    if path.ends_with(".ipxe") { "text/plain; charset=utf-8" } else { "application/octet-stream" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges() {
        use ByteRange::*;
        let len = 1000;
        assert_eq!(parse_range("bytes=0-99", len), Part(0, 99));
        assert_eq!(parse_range("bytes=500-", len), Part(500, 999));
        assert_eq!(parse_range("bytes=-100", len), Part(900, 999));
        assert_eq!(parse_range("bytes=-5000", len), Part(0, 999));
        assert_eq!(parse_range("bytes=900-5000", len), Part(900, 999));
        assert_eq!(parse_range("bytes=1000-", len), Unsatisfiable);
        assert_eq!(parse_range("bytes=1000-1001", len), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", len), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        // Ignored: whole file.
        for v in ["bytes=5-1", "bytes=0-1,5-6", "items=0-1", "bytes=a-b", "bytes=-", "bytes=+1-2", "bytes=0-1-2"] {
            assert_eq!(parse_range(v, len), Whole, "{v}");
        }
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(none_match("\"a\"", "\"a\""));
        assert!(none_match("\"x\", W/\"a\"", "\"a\""));
        assert!(none_match("*", "\"a\""));
        assert!(!none_match("\"b\"", "\"a\""));
    }
}
