//! Files through the whole bridge (Synapse, the bridge, the test MSN server relaying
//! P2P as real servers do, an `msnp11-sdk` contact, a matrix-sdk user): a PNG and a
//! 5 MB file from the contact arrive as `m.image` and `m.file` with identical bytes
//! (downloaded back from Synapse's media repository); an image and a file from the
//! user arrive at the contact with identical bytes; a declined file and one whose
//! conversation is closed mid-way each give their notice. Inks, winks and voice clips
//! come from a raw MSNP12 client (the SDK sends none of them).

use std::sync::Arc;
use std::time::Duration;

use matrix_sdk::ruma::events::room::message::{
    FileMessageEventContent, ImageMessageEventContent, MessageType, RoomMessageEventContent,
};
use matrix_sdk::ruma::{OwnedMxcUri, OwnedRoomId};
use msn_testkit::ServerEvent;
use msnp::p2p::{MsnObject, P2pConfig, P2pEndpoint, P2pEvent, Seed};
use msnp11_sdk::Event;
use serde_json::Value;
use tokio::time::timeout;

use crate::bridge_e2e::{ALICE, BOB, PUPPET_ALICE, conversation_with_bob, msn_contact, scene};
use crate::bridge_pictures::AVATAR_PNG as PNG;
use crate::e2e::{Seen, User, new_user, unique};
use crate::testkit_msnp11_sdk as sdk;
use crate::testkit_raw::{self as raw, Raw};

/// How long the SDK may take over a transfer of a few MB.
const TRANSFER: Duration = Duration::from_secs(120);

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// The media message from Alice's puppet named `name` in `portal`, as JSON.
async fn media_from_alice(user: &mut User, portal: &OwnedRoomId, name: &str) -> Value {
    match user
        .wait_for(&format!("{name} from Alice"), |s| {
            matches!(s, Seen::Media { room, sender, content }
                if room == portal && sender.as_str() == PUPPET_ALICE
                    && content.get("body").and_then(Value::as_str) == Some(name))
        })
        .await
    {
        Seen::Media { content, .. } => content,
        other => panic!("unexpected {other:?}"),
    }
}

/// The bytes behind `mxc`, downloaded as `user` (authenticated media).
async fn download(hs: &str, user: &User, mxc: &str) -> Vec<u8> {
    let path = mxc.strip_prefix("mxc://").expect("an mxc URI");
    let token = user.client.access_token().expect("logged in");
    let answer = reqwest::Client::new()
        .get(format!("{hs}/_matrix/client/v1/media/download/{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("download");
    assert!(answer.status().is_success(), "{}", answer.status());
    answer.bytes().await.expect("media bytes").to_vec()
}

#[tokio::test]
async fn e2e_a_png_and_a_5_mb_file_from_msn_arrive_whole() {
    let Some((scene, bridge)) = scene().await else {
        return;
    };
    let (alice, _alice_events) = msn_contact(&scene.msn, ALICE).await;
    let mut bob = new_user(&scene.hs, &unique("fbob"), "bob-password-files").await;
    bob.log_in_to_msn().await;
    let (alice_sb, _sb_events) = conversation_with_bob(&alice, "files for you").await;
    let portal = bob.accept_invite().await;
    bob.text_from(&portal, PUPPET_ALICE, "files for you").await;

    timeout(TRANSFER, alice_sb.send_file(BOB, "holiday.png", &PNG))
        .await
        .expect("the picture's transfer timed out")
        .expect("the picture goes through");
    let image = media_from_alice(&mut bob, &portal, "holiday.png").await;
    assert_eq!(image["msgtype"], "m.image");
    assert_eq!(image["info"]["mimetype"], "image/png");
    assert_eq!(
        (image["info"]["w"].as_u64(), image["info"]["h"].as_u64()),
        (Some(8), Some(8))
    );
    assert_eq!(image["info"]["size"].as_u64(), Some(PNG.len() as u64));
    let url = image["url"].as_str().expect("a URL");
    assert_eq!(download(&scene.hs, &bob, url).await, PNG, "identical bytes");

    let archive = pattern(5 * 1024 * 1024);
    timeout(TRANSFER, alice_sb.send_file(BOB, "archive.zip", &archive))
        .await
        .expect("the file's transfer timed out")
        .expect("the file goes through");
    // Announced before it is posted.
    bob.wait_for("the announcement", |s| {
        matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("is sending archive.zip (5.0 MB)"))
    })
    .await;
    let file = media_from_alice(&mut bob, &portal, "archive.zip").await;
    assert_eq!(file["msgtype"], "m.file");
    assert_eq!(file["info"]["mimetype"], "application/zip");
    let url = file["url"].as_str().expect("a URL");
    assert!(
        download(&scene.hs, &bob, url).await == archive,
        "identical bytes"
    );
    bridge.stop().await;
}

/// Uploads `data` as `user` and sends it into `portal` as `msgtype`.
async fn send_media(user: &User, portal: &OwnedRoomId, msgtype: &str, name: &str, data: Vec<u8>) {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let size = data.len();
    let uploaded = user
        .client
        .media()
        .upload(&mime, data, None)
        .await
        .expect("upload");
    let url: OwnedMxcUri = uploaded.content_uri;
    let content = match msgtype {
        "m.image" => {
            let mut image = ImageMessageEventContent::plain(name.to_owned(), url);
            let mut info = matrix_sdk::ruma::events::room::ImageInfo::new();
            info.size = matrix_sdk::ruma::UInt::new(size as u64);
            info.mimetype = Some(mime.to_string());
            image.info = Some(Box::new(info));
            MessageType::Image(image)
        }
        _ => MessageType::File(FileMessageEventContent::plain(name.to_owned(), url)),
    };
    user.client
        .get_room(portal)
        .expect("the portal")
        .send(RoomMessageEventContent::new(content))
        .await
        .expect("sent");
}

/// Waits for the contact to be offered a file: (name, size, request).
async fn offered(
    events: &mut sdk::Events,
) -> (
    String,
    u64,
    msnp11_sdk::models::file_transfer_request::FileTransferRequest,
) {
    match timeout(
        TRANSFER,
        sdk::wait_for(
            events,
            "a file offer",
            |e| matches!(e, Event::FileTransferRequest { email, .. } if email == BOB),
        ),
    )
    .await
    .expect("no offer in time")
    {
        Event::FileTransferRequest {
            file_name,
            file_size,
            request,
            ..
        } => (file_name, file_size, request),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn e2e_an_image_and_a_file_from_matrix_reach_the_contact_whole() {
    let Some((scene, bridge)) = scene().await else {
        return;
    };
    let (alice, _alice_events) = msn_contact(&scene.msn, ALICE).await;
    let mut bob = new_user(&scene.hs, &unique("gbob"), "bob-password-files").await;
    bob.log_in_to_msn().await;
    let (alice_sb, mut sb_events) = conversation_with_bob(&alice, "send me things").await;
    let portal = bob.accept_invite().await;
    bob.text_from(&portal, PUPPET_ALICE, "send me things").await;

    for (msgtype, name, data) in [
        ("m.image", "cat.png", PNG.to_vec()),
        ("m.file", "report.pdf", pattern(300_000)),
    ] {
        send_media(&bob, &portal, msgtype, name, data.clone()).await;
        let (file_name, file_size, request) = offered(&mut sb_events).await;
        assert_eq!((file_name.as_str(), file_size), (name, data.len() as u64));
        let got = timeout(TRANSFER, alice_sb.accept_file_request(request))
            .await
            .expect("the transfer timed out")
            .expect("the file arrives");
        assert!(got == data, "identical bytes for {name}");
    }
    bridge.stop().await;
}

#[tokio::test]
async fn e2e_a_declined_file_and_a_conversation_closed_mid_way_give_their_notice() {
    let Some((scene, bridge)) = scene().await else {
        return;
    };
    let (alice, _alice_events) = msn_contact(&scene.msn, ALICE).await;
    let mut bob = new_user(&scene.hs, &unique("hbob"), "bob-password-files").await;
    bob.log_in_to_msn().await;
    let (alice_sb, mut sb_events) = conversation_with_bob(&alice, "not that one").await;
    let portal = bob.accept_invite().await;
    bob.text_from(&portal, PUPPET_ALICE, "not that one").await;

    send_media(&bob, &portal, "m.file", "virus.exe", pattern(2_000)).await;
    let (_, _, request) = offered(&mut sb_events).await;
    timeout(sdk::T, alice_sb.decline_file_request(request))
        .await
        .expect("decline timed out")
        .expect("declined");
    bob.wait_for("the declined notice", |s| {
        matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("not delivered to MSN: the contact declined it"))
    })
    .await;

    // Alice accepts a large file, then closes the conversation while it comes.
    send_media(
        &bob,
        &portal,
        "m.file",
        "movie.avi",
        pattern(3 * 1024 * 1024),
    )
    .await;
    let (_, _, request) = offered(&mut sb_events).await;
    let alice_sb = Arc::new(alice_sb);
    let mut server = scene.msn.subscribe();
    let receiving = {
        let alice_sb = alice_sb.clone();
        tokio::spawn(async move { alice_sb.accept_file_request(request).await })
    };
    // Under way: the bridge's data messages pass through the switchboard.
    let mut relayed = 0;
    while relayed < 20 {
        match timeout(sdk::T, server.recv()).await {
            Ok(Ok(ServerEvent::MessageRelayed { from, .. })) if from == BOB => relayed += 1,
            Ok(Ok(_)) => {}
            other => panic!("the transfer did not start: {other:?}"),
        }
    }
    timeout(sdk::T, alice_sb.disconnect())
        .await
        .expect("OUT timed out")
        .expect("left");
    receiving.abort();
    bob.wait_for("the notice of the broken transfer", |s| {
        matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("not delivered to MSN: the conversation closed before it was complete"))
    })
    .await;
    bridge.stop().await;
}

/// A GIF as MSN 7 draws an ink: 2×1 pixels.
const INK_GIF: &[u8] = b"GIF89a\x02\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x02\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// Sends `MSG` with `content_type` and `body` on a raw switchboard (ack mode `N`).
async fn raw_msg(sb: &mut Raw, content_type: &str, body: &[u8]) {
    let mut payload =
        format!("MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n").into_bytes();
    payload.extend_from_slice(body);
    let trid = sb.next_trid_for_payload();
    let mut wire = format!("MSG {trid} N {}\r\n", payload.len()).into_bytes();
    wire.extend_from_slice(&payload);
    sb.raw(&wire).await;
}

/// Serves `object` (its bytes `data`) to whoever asks on the raw switchboard `sb`, as
/// Alice's Messenger would, until one transfer of it is complete.
async fn serve_over_p2p(mut sb: Raw, object: MsnObject, data: bytes::Bytes) {
    let limits = msnp::Limits::default();
    let mut endpoint = P2pEndpoint::new(P2pConfig::new(ALICE), limits.clone(), Seed::from_u64(7));
    assert!(endpoint.publish(object, data));
    loop {
        while let Some((dest, body)) = endpoint.poll_transmit() {
            let payload = msnp::message::encode_p2p(&dest, &body).expect("a P2P payload");
            let trid = sb.next_trid_for_payload();
            let mut wire = format!("MSG {trid} D {}\r\n", payload.len()).into_bytes();
            wire.extend_from_slice(&payload);
            sb.raw(&wire).await;
        }
        while let Some(event) = endpoint.poll_event() {
            if matches!(event, P2pEvent::Served { complete: true, .. }) {
                return;
            }
        }
        let frame = sb.expect("MSG").await;
        let payload = frame.payload.unwrap_or_default();
        if let Ok(msnp::MsgPayload::P2p { body, .. }) = msnp::parse_msg(&payload, &limits) {
            endpoint
                .handle_p2p(std::time::Instant::now(), BOB, &body)
                .expect("the bridge's P2P message reads");
        }
    }
}

#[tokio::test]
async fn e2e_inks_winks_and_voice_clips_from_msn() {
    let Some((scene, bridge)) = scene().await else {
        return;
    };
    // Alice on a raw MSNP12 connection, the way Messenger 7.5 writes these.
    let mut alice = raw::login(&scene.msn, ALICE, 12).await;
    raw::chg(&mut alice, "NLN").await;
    let mut bob = new_user(&scene.hs, &unique("ibob"), "bob-password-inks").await;
    bob.log_in_to_msn().await;
    alice.cmd("XFR SB").await;
    let xfr = alice.expect("XFR").await;
    let mut sb = Raw::connect(scene.msn.sb_addr()).await;
    sb.version = 12;
    sb.cmd(&format!("USR {ALICE} {}", xfr.arg(3).expect("cookie")))
        .await;
    sb.expect_now("USR").await;
    sb.cmd(&format!("CAL {BOB}")).await;
    sb.expect("JOI").await;
    raw_msg(&mut sb, "text/plain; charset=UTF-8", b"look").await;
    let portal = bob.accept_invite().await;
    bob.text_from(&portal, PUPPET_ALICE, "look").await;

    // A GIF ink: a picture.
    let ink = format!("base64:{}", base64_encode(INK_GIF));
    raw_msg(&mut sb, "image/gif", ink.as_bytes()).await;
    let picture = media_from_alice(&mut bob, &portal, "ink.gif").await;
    assert_eq!(picture["msgtype"], "m.image");
    assert_eq!(
        (picture["info"]["w"].as_u64(), picture["info"]["h"].as_u64()),
        (Some(2), Some(1))
    );
    let url = picture["url"].as_str().expect("a URL");
    assert_eq!(
        download(&scene.hs, &bob, url).await,
        INK_GIF,
        "identical bytes"
    );

    // An ISF ink: named in a notice.
    raw_msg(&mut sb, "application/x-ms-ink", b"base64:AAECAwQ=").await;
    bob.wait_for("the ISF notice", |s| {
        matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("ink in ISF"))
    })
    .await;

    // A wink: named in a notice.
    let wink = MsnObject::for_data(ALICE, 8, "0", "Dancing pig", b"a cab file");
    let datacast = format!("ID: 2\r\nData: {}\r\n\r\n", wink.to_xml());
    raw_msg(&mut sb, "text/x-msnmsgr-datacast", datacast.as_bytes()).await;
    bob.wait_for("the wink notice", |s| {
        matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("a wink (\u{201c}Dancing pig\u{201d})"))
    })
    .await;

    // A voice clip: fetched from Alice over MSNSLP and posted as audio.
    let sound = bytes::Bytes::from(pattern(20_000));
    let clip = MsnObject::for_data(ALICE, 11, "0", "", &sound);
    let datacast = format!("ID: 3\r\nData: {}\r\n\r\n", clip.to_xml());
    raw_msg(&mut sb, "text/x-msnmsgr-datacast", datacast.as_bytes()).await;
    let serving = tokio::spawn(serve_over_p2p(sb, clip, sound.clone()));
    let audio = media_from_alice(&mut bob, &portal, "voice clip.wav").await;
    assert_eq!(audio["msgtype"], "m.audio");
    let url = audio["url"].as_str().expect("a URL");
    assert!(
        download(&scene.hs, &bob, url).await == sound,
        "identical bytes"
    );
    timeout(sdk::T, serving)
        .await
        .expect("the clip is served")
        .expect("the server task");
    bridge.stop().await;
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}
