//! Media streamed between the homeserver's media repository and files on disk, so that
//! a file of any size (up to the configured limit) costs a few buffers of memory:
//! uploads read the file as the request goes, downloads write each piece as it comes.

use std::path::Path;
use std::time::Duration;

use ruma::OwnedMxcUri;
use ruma::api::client::authenticated_media::get_content;
use ruma::api::client::media::create_content;
use tokio::io::AsyncWriteExt as _;

use super::client::{Client, ClientError};

/// How long the homeserver may wait for remote media before it answers.
const REMOTE_WAIT: Duration = Duration::from_secs(20);

impl Client {
    /// `POST /_matrix/media/v3/upload` of the file at `path`, streamed from disk.
    pub async fn upload_path(
        &self,
        path: &Path,
        content_type: &str,
        filename: &str,
    ) -> Result<String, ClientError> {
        let local =
            |e: std::io::Error| ClientError::Build(format!("cannot read {}: {e}", path.display()));
        let file = tokio::fs::File::open(path).await.map_err(local)?;
        let size = file.metadata().await.map_err(local)?.len();
        let mut request = create_content::v3::Request::new(Vec::new());
        request.content_type = Some(content_type.to_owned());
        request.filename = Some(filename.to_owned());
        let mut head = self.request_head(request, None)?;
        head.headers
            .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(size));
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let response = self
            .send_streamed::<create_content::v3::Request>(head, body)
            .await?;
        let answer = self
            .read_streamed::<create_content::v3::Request>(response)
            .await?;
        Ok(answer.content_uri.to_string())
    }

    /// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}` (authenticated
    /// media) into a new file at `path`, written as it comes. Past `max` bytes it stops
    /// and removes the file. Returns the size.
    pub async fn download_path(
        &self,
        mxc: &str,
        path: &Path,
        max: u64,
    ) -> Result<u64, ClientError> {
        let uri = OwnedMxcUri::from(mxc);
        let (server, media_id) = uri
            .parts()
            .map_err(|e| ClientError::Build(format!("media URI {mxc:?}: {e}")))?;
        let mut request = get_content::v1::Request::new(media_id.to_owned(), server.to_owned());
        request.timeout_ms = REMOTE_WAIT;
        let head = self.request_head(request, None)?;
        let mut response = self
            .send_streamed::<get_content::v1::Request>(head, reqwest::Body::from(Vec::new()))
            .await?;
        let written = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .await
                .map_err(|e| ClientError::Build(format!("cannot write {}: {e}", path.display())))?;
            let mut size = 0u64;
            while let Some(piece) = response.chunk().await.map_err(ClientError::Transport)? {
                size += piece.len() as u64;
                if size > max {
                    return Err(ClientError::Response(format!(
                        "media {mxc} is larger than the {max} bytes allowed"
                    )));
                }
                file.write_all(&piece).await.map_err(|e| {
                    ClientError::Build(format!("cannot write {}: {e}", path.display()))
                })?;
            }
            file.flush()
                .await
                .map_err(|e| ClientError::Build(format!("cannot write {}: {e}", path.display())))?;
            Ok(size)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        written
    }
}
