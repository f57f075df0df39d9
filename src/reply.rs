//! What a handler answers, before it becomes a hyper response: status, content type, body and
//! headers.

use hyper::header::{HeaderName, HeaderValue};
use hyper::{StatusCode, body::Bytes};
use serde::Serialize;

/// A handler's answer before it becomes a hyper response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Reply {
    pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
        Reply::written(status, |body| {
            serde_json::to_writer(body, value).expect("API types always serialize");
        })
    }

    /// A body built elsewhere (the OpenAPI document, the reference page).
    pub fn bytes(content_type: &'static str, body: Bytes) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    pub fn ok(value: &impl Serialize) -> Reply {
        Reply::json(StatusCode::OK, value)
    }

    /// A JSON body written by `write`: serde_json (`json`), or by hand (see `push_str`) for the
    /// shapes serde_json is slow on.
    pub fn written(status: StatusCode, write: impl FnOnce(&mut Vec<u8>)) -> Reply {
        let Ok(reply) = Reply::try_written(status, |body| {
            write(body);
            Ok::<_, std::convert::Infallible>(())
        });
        reply
    }

    /// `written`, for a body that is read as it is written and may not be there.
    pub fn try_written<E>(
        status: StatusCode,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Reply, E> {
        // One task is about 600 bytes: starting at serde_json's 128 would grow the buffer thrice.
        let mut body = Vec::with_capacity(1024);
        write(&mut body)?;
        Ok(Reply {
            status,
            content_type: "application/json",
            body: body.into(),
            headers: Vec::new(),
        })
    }

    /// 201 with the object and its `Location`.
    pub fn created(value: &impl Serialize, location: &str) -> Reply {
        Reply::json(StatusCode::CREATED, value).with_header(hyper::header::LOCATION, location)
    }

    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            content_type: "application/json",
            body: Bytes::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Reply {
        // Values we build are ASCII (URLs we percent-encode, numbers); a bad one is a bug.
        let value = HeaderValue::from_str(value).expect("header values we build are valid");
        self.headers.push((name, value));
        self
    }
}
