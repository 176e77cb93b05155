//! One `POST` of a SOAP (or any XML) request described by `msnp` as data, its answer read
//! in chunks up to a limit so a hostile server cannot make the bridge buffer without
//! bound. Shared by the RST ticket routes and the address book. Bodies hold passwords
//! and tickets: nothing here logs them.

use msnp::PostRequest;

/// Why a `POST` gave no body to read.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("cannot reach the server: {0}")]
    Http(#[source] reqwest::Error),
    #[error("the server's answer is larger than {max} bytes")]
    TooLarge { max: usize },
}

/// Sends `request` and returns the status and the body (lossily UTF-8), at most `max`
/// bytes of it.
pub async fn post(
    http: &reqwest::Client,
    request: &PostRequest,
    max: usize,
) -> Result<(u16, String), PostError> {
    let mut builder = http.post(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let mut response = builder
        .body(request.body.expose().to_owned())
        .send()
        .await
        .map_err(PostError::Http)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(PostError::Http)? {
        if body.len() + chunk.len() > max {
            return Err(PostError::TooLarge { max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
