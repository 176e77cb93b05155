//! `msnp11-sdk` 0.13.0's frame splitter (its `src/receive_split.rs`, MIT licence, by the
//! crate's authors), for parsing the same transcript side by side with ours.
//!
//! The logic is the crate's, line for line, with one change: it reads from a
//! [`std::io::Read`] instead of awaiting a Tokio socket read under a cancellation token
//! (the crate's function is private and takes the socket itself; the change only takes
//! the async machinery away from its cost). Each call reads up to 1,664 bytes, splits them
//! into frames by looking for the first line again after each frame, reads more while a
//! `MSG`/`UBX`/`GCF` payload is incomplete, and returns the frames as owned byte vectors.
#![allow(
    clippy::while_let_loop,
    reason = "the crate's code, kept as it is written there"
)]

use std::io::Read;

/// One read's worth of frames, or `None` at the end of the input.
pub fn receive_split(rd: &mut impl Read) -> Option<Vec<Vec<u8>>> {
    let mut buf = vec![0; 1664];
    let received = rd.read(&mut buf).unwrap_or(0);
    if received == 0 {
        return None;
    }

    let mut messages_bytes = buf.get(..received).unwrap_or_default().to_vec();
    let mut messages = Vec::new();

    loop {
        // The crate uses `str::from_utf8_unchecked`; the checked form costs a little more
        // and needs no `unsafe` (the transcript is valid UTF-8 at every read boundary).
        let Ok(messages_string) = std::str::from_utf8(&messages_bytes) else {
            break;
        };
        let Some(message) = messages_string.lines().next() else {
            break;
        };

        let message = message.to_string() + "\r\n";
        let mut args = message.split_ascii_whitespace();
        let command = args.next().unwrap_or("");

        match command {
            "GCF" | "UBX" | "MSG" => {
                let length_index = match command {
                    "UBX" => 1,
                    _ => 2,
                };

                let Ok(length) = args.nth(length_index).unwrap_or("").parse::<usize>() else {
                    continue;
                };

                let length = message.len() + length;
                if length > messages_bytes.len() {
                    let mut buf = vec![0; 1664];
                    let received = rd.read(&mut buf).unwrap_or(0);
                    if received == 0 {
                        return None;
                    }

                    let buf = buf.get(..received).unwrap_or_default();
                    messages_bytes.extend_from_slice(buf);
                    continue;
                }

                let new_bytes = messages_bytes.drain(..length);
                messages.push(new_bytes.collect());
            }

            _ => {
                let length = message.len();
                if length > messages_bytes.len() {
                    break;
                }

                let new_bytes = messages_bytes.drain(..length);
                messages.push(new_bytes.collect());
            }
        }
    }

    Some(messages)
}

/// The transcript as a server's writes would deliver it: reads of at most 1,664 bytes
/// (the SDK's buffer) that end where a frame ends, as when the server writes whole frames.
pub struct FrameReads<'a> {
    data: &'a [u8],
    /// Where each read ends.
    ends: std::vec::IntoIter<usize>,
    at: usize,
}

impl<'a> FrameReads<'a> {
    /// `frame_ends`: the offset after each frame of `data`, in order.
    pub fn new(data: &'a [u8], frame_ends: &[usize]) -> Self {
        let mut ends = Vec::new();
        let mut start = 0;
        let mut last = 0;
        for &end in frame_ends {
            if end - start > 1664 && last > start {
                ends.push(last);
                start = last;
            }
            last = end;
        }
        ends.push(data.len());
        Self {
            data,
            ends: ends.into_iter(),
            at: 0,
        }
    }
}

impl Read for FrameReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = match self.ends.as_slice().first() {
            Some(&end) => end.min(self.at + buf.len()),
            None => return Ok(0),
        };
        let n = end - self.at;
        buf[..n].copy_from_slice(&self.data[self.at..end]);
        self.at = end;
        if self.ends.as_slice().first() == Some(&end) {
            self.ends.next();
        }
        Ok(n)
    }
}
