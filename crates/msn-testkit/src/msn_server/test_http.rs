//! What the server's own tests share: one `POST` of a request the `msnp` crate built,
//! as a client would send it.

use msnp::auth::PostRequest;

/// Sends `request`; its status and body.
pub(crate) async fn post(request: PostRequest) -> (u16, String) {
    let mut builder = reqwest::Client::new().post(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let answer = builder
        .body(request.body.expose().to_owned())
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap())
}
