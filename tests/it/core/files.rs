//! Files both ways through the core, over the in-repo MSN server's switchboards: a
//! contact's picture and a larger file arrive in the portal as `m.image` (with its
//! size) and `m.file` with identical bytes, the larger one announced first; a Matrix
//! user's file reaches the contact whole and gets its send status; a file over the
//! limit either way, and one the contact declines, each give their notice; nothing is
//! left in the bridge's file directory.

use std::path::{Path, PathBuf};

use matrix_msn::bridge::ids::MsnAddress;
use matrix_msn::bridge::port::SendStatus;
use matrix_msn::bridge::remote::{Chat, FileTransfer, MsnSessionPort, OutgoingFile, RemoteEvent};
use matrix_msn::bridge::{MatrixEvent, Media, MessageKind};
use msn_testkit::ServerEvent;
use msnp::p2p::{FileContext, Packet, Reassembly, SlpMessage};

use super::harness::{
    ALICE, BOB, Contact, PUPPET_ALICE, Scene, USER, contacts_file_dir, drive, until,
};

use crate::support::{eid, rid, uid};

/// A PNG signature and header (5×4 pixels), then `len` more bytes.
fn png(len: usize) -> Vec<u8> {
    let mut data = vec![
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 5, 0, 0, 0, 4, 8, 6, 0, 0, 0,
    ];
    data.extend((0..len).map(|i| (i * 31 % 253) as u8));
    data
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Writes `data` where Alice's Messenger would read it from.
fn alice_file(name: &str, data: &[u8]) -> OutgoingFile {
    let dir = contacts_file_dir().join("outgoing");
    std::fs::create_dir_all(&dir).expect("a directory for Alice's files");
    let path = dir.join(format!("{}-{name}", std::process::id()));
    std::fs::write(&path, data).expect("Alice's file");
    OutgoingFile {
        name: name.into(),
        size: data.len() as u64,
        path,
        preview: None,
    }
}

/// Alice sends `file` to Bob and waits until it is through (or fails).
async fn alice_sends(alice: &Contact, file: OutgoingFile) -> Result<(), String> {
    let to = Chat::Contact(MsnAddress::from_server(BOB));
    let delivery = drive("Alice's offer to go", alice.session.send_file(&to, file))
        .await
        .map_err(|e| e.to_string())?;
    drive("Alice's file to arrive", delivery)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The media event from Alice's puppet named `name` in `portal`: (msgtype, bytes,
/// media type, dimensions).
async fn posted(
    scene: &Scene,
    portal: &str,
    name: &str,
) -> (String, Vec<u8>, String, Option<(u32, u32)>) {
    let hs = scene.hs.clone();
    let (msgtype, (url, mimetype, dimensions)) = until(&format!("{name} in the portal"), || {
        hs.room(portal)?.timeline.into_iter().find_map(|e| {
            (e.sender == PUPPET_ALICE && e.body == name)
                .then_some(e.media.map(|m| (e.msgtype, m)))
                .flatten()
        })
    })
    .await;
    let bytes = scene.hs.media(&url).expect("the uploaded bytes");
    (msgtype, bytes, mimetype, dimensions)
}

/// Waits until `contact` has the file `name` from Bob with the bytes `data`, and
/// removes their copy.
async fn contact_has(contact: &mut Contact, who: &str, name: &str, data: &[u8]) {
    let path = contact
        .next(&format!("{name} at {who}"), |event| match event {
            RemoteEvent::File {
                name: got,
                transfer: FileTransfer::Received { path, .. },
                from,
                ..
            } if got == name && from.as_str() == BOB => Some(path),
            _ => None,
        })
        .await;
    let copy = std::fs::read(&path).expect("the contact's copy");
    let _ = std::fs::remove_file(&path);
    assert!(copy == data, "identical bytes of {name} at {who}");
}

/// A scene whose bridge takes and sends files up to `max` bytes.
async fn scene_with_file_limit(max: u64) -> Scene {
    let world = Scene::world().await;
    let mut config = Scene::config_in(&world);
    config.msn.max_file_bytes = max;
    Scene::start_with(world, config, super::harness::Order::WorkerFirst).await
}

/// Waits until the bridge's file directory holds nothing.
async fn file_dir_emptied(scene: &Scene) {
    let dir = scene.config.msn.file_dir();
    until("the bridge's files to go", || {
        files_left(&dir).is_empty().then_some(())
    })
    .await;
}

fn files_left(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_contacts_picture_and_file_arrive_whole_as_image_and_file() {
    let mut scene = Scene::start().await;
    let (alice, portal) = scene.chat_with_alice("a picture for you").await;

    let picture = png(40_000);
    alice_sends(&alice, alice_file("holiday.png", &picture))
        .await
        .expect("the picture goes through");
    let (msgtype, bytes, mimetype, dimensions) = posted(&scene, &portal, "holiday.png").await;
    assert_eq!(msgtype, "m.image");
    assert!(bytes == picture, "identical bytes");
    assert_eq!((mimetype.as_str(), dimensions), ("image/png", Some((5, 4))));

    // Large enough to take a while: announced, then posted.
    let big = pattern(300_000);
    alice_sends(&alice, alice_file("notes.bin", &big))
        .await
        .expect("the file goes through");
    let (msgtype, bytes, mimetype, _) = posted(&scene, &portal, "notes.bin").await;
    assert_eq!(msgtype, "m.file");
    assert!(bytes == big, "identical bytes");
    assert_eq!(mimetype, "application/octet-stream");
    // One notice: the announcement, edited once the file is in.
    let announcement = announcement_of(&scene, &portal, "is sending notes.bin (293.0 KB)").await;
    edited_to(&scene, &portal, &announcement, "sent notes.bin (293.0 KB).").await;
    assert!(files_left(&scene.config.msn.file_dir()).is_empty());
    scene.stop().await;
}

/// The event ID of Alice's notice in `portal` containing `text`.
async fn announcement_of(scene: &Scene, portal: &str, text: &str) -> String {
    let hs = scene.hs.clone();
    until(&format!("Alice to say {text:?}"), || {
        hs.room(portal)?
            .timeline
            .into_iter()
            .find(|e| e.sender == PUPPET_ALICE && e.body.contains(text) && e.replaces.is_none())
            .map(|e| e.event_id)
    })
    .await
}

/// Waits until `event` in `portal` is edited to read `text`.
async fn edited_to(scene: &Scene, portal: &str, event: &str, text: &str) {
    let hs = scene.hs.clone();
    let expected = format!("* {text}");
    until(&format!("the announcement to read {text:?}"), || {
        hs.room(portal)?
            .timeline
            .into_iter()
            .find(|e| e.replaces.as_deref() == Some(event) && e.body == expected)
            .map(|_| ())
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_transfer_broken_off_edits_its_announcement_and_posts_nothing() {
    let mut scene = Scene::start().await;
    let (alice, portal) = scene.chat_with_alice("here it comes").await;
    let to = Chat::Contact(MsnAddress::from_server(BOB));
    let file = alice_file("broken.bin", &pattern(600_000));
    let _delivery = drive("Alice's offer to go", alice.session.send_file(&to, file))
        .await
        .expect("offered");
    let announcement = announcement_of(&scene, &portal, "is sending broken.bin").await;
    // Alice's Messenger closes while the file comes.
    alice.session.logout().await;
    edited_to(
        &scene,
        &portal,
        &announcement,
        "sent broken.bin, but it did not arrive: the conversation closed before it was complete.",
    )
    .await;
    let timeline = scene
        .hs
        .room(&portal)
        .map(|r| r.timeline)
        .unwrap_or_default();
    assert!(
        !timeline
            .iter()
            .any(|e| e.body == "broken.bin" || e.body.starts_with("sent broken.bin")),
        "no file and no second notice: {timeline:?}"
    );
    file_dir_emptied(&scene).await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_file_over_the_limit_is_declined_with_a_notice() {
    let mut scene = scene_with_file_limit(10_000).await;
    let (alice, portal) = scene.chat_with_alice("too big?").await;
    let refused = alice_sends(&alice, alice_file("film.avi", &pattern(20_000))).await;
    let why = refused.expect_err("the bridge declines it");
    assert!(why.contains("declined"), "{why}");
    scene
        .notice_from(
            &portal,
            PUPPET_ALICE,
            "offered film.avi (19.5 KB), larger than the bridge takes (9.8 KB): it was declined.",
        )
        .await;
    scene.stop().await;
}

/// The user sends `data` as `msgtype` named `name` in `portal`; returns its event ID.
async fn user_sends_file(
    scene: &mut Scene,
    portal: &str,
    (msgtype, name): (&str, &str),
    data: Vec<u8>,
) -> String {
    let size = data.len() as u64;
    let url = scene.hs.user_uploads(data);
    let event_id = scene.hs.user_sends(portal, USER, name);
    let event = MatrixEvent::Message {
        room_id: rid(portal),
        event_id: eid(&event_id),
        sender: uid(USER),
        kind: MessageKind::from_msgtype(msgtype),
        body: name.into(),
        html: None,
        media: Some(Media {
            url,
            filename: None,
            size: Some(size),
        }),
    };
    scene.push(vec![event]).await;
    event_id
}

/// The send status the bridge reported for `event_id` in `portal`.
async fn status_of(scene: &Scene, portal: &str, event_id: &str) -> SendStatus {
    let hs = scene.hs.clone();
    until("the send status", || {
        hs.room(portal)?
            .statuses
            .into_iter()
            .find(|(id, _)| id == event_id)
            .map(|(_, status)| status)
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_matrix_users_file_reaches_the_contact_whole() {
    let mut scene = Scene::start().await;
    let (mut alice, portal) = scene.chat_with_alice("send me the report").await;
    let report = pattern(150_000);
    let event_id = user_sends_file(
        &mut scene,
        &portal,
        ("m.file", "report.pdf"),
        report.clone(),
    )
    .await;
    contact_has(&mut alice, "Alice", "report.pdf", &report).await;
    assert_eq!(
        status_of(&scene, &portal, &event_id).await,
        SendStatus::Delivered
    );
    scene.assert_nothing_undelivered(&portal);
    file_dir_emptied(&scene).await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_declined_file_and_one_over_the_limit_give_their_notice() {
    let mut scene = scene_with_file_limit(100_000).await;
    scene.log_in(USER).await;
    // Alice's Messenger takes files up to 32 KiB: it declines this one.
    let alice = Contact::sign_in_declining(&scene.msn, ALICE, 32 * 1024).await;
    alice.say(BOB, "no big files please").await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene.hs.user_joins(&portal, USER);
    let event_id = user_sends_file(
        &mut scene,
        &portal,
        ("m.video", "clip.mp4"),
        pattern(90_000),
    )
    .await;
    let status = status_of(&scene, &portal, &event_id).await;
    assert_eq!(
        status,
        SendStatus::Failed("the contact declined it".into()),
        "the contact's refusal, told as such"
    );
    scene
        .notice_from(
            &portal,
            PUPPET_ALICE,
            "not delivered to MSN: the contact declined it",
        )
        .await;

    let too_big = user_sends_file(
        &mut scene,
        &portal,
        ("m.file", "huge.iso"),
        pattern(200_000),
    )
    .await;
    let SendStatus::Failed(why) = status_of(&scene, &portal, &too_big).await else {
        panic!("a file over the limit is not sent")
    };
    assert!(why.contains("up to 97.7 KB"), "{why}");
    scene.stop().await;
}

/// The file context of the first file offer Bob's side sent through the server (an
/// offer with a preview takes several P2P chunks).
async fn first_offer(events: &mut tokio::sync::broadcast::Receiver<ServerEvent>) -> FileContext {
    drive("a file offer through the server", async {
        let mut messages: std::collections::HashMap<u32, Reassembly> = Default::default();
        loop {
            let Ok(ServerEvent::Frame { email, frame }) = events.recv().await else {
                continue;
            };
            if email.as_deref() != Some(BOB) || frame.verb != "MSG" {
                continue;
            }
            let payload = frame.payload.unwrap_or_default();
            let Ok(msnp::MsgPayload::P2p { body, .. }) =
                msnp::parse_msg(&payload, &msnp::Limits::default())
            else {
                continue;
            };
            let Ok(packet) = Packet::parse(&body) else {
                continue;
            };
            let header = packet.header;
            if header.session_id != 0 {
                continue;
            }
            let message = messages
                .entry(header.identifier)
                .or_insert_with(|| Reassembly::new(header.total_size, 1 << 20).expect("a size"));
            if message.add(&header, &packet.data) != Ok(true) {
                continue;
            }
            let Some(data) = messages
                .remove(&header.identifier)
                .and_then(Reassembly::finish)
            else {
                continue;
            };
            if let Ok(slp) = SlpMessage::parse(&data)
                && let Some(Ok(context)) = slp.file_offer()
            {
                return context;
            }
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn an_image_is_offered_with_its_thumbnail_as_preview() {
    let mut scene = Scene::start().await;
    let (mut alice, portal) = scene.chat_with_alice("show me").await;
    let mut server = scene.msn.subscribe();
    // The stand-in's thumbnail of a picture is the picture itself.
    let picture = png(3_000);
    user_sends_file(&mut scene, &portal, ("m.image", "cat.png"), picture.clone()).await;
    let offer = first_offer(&mut server).await;
    assert_eq!(
        (offer.name.as_str(), offer.size),
        ("cat.png", picture.len() as u64)
    );
    assert!(
        offer.preview.as_deref() == Some(&picture[..]),
        "the thumbnail is the preview"
    );
    contact_has(&mut alice, "Alice", "cat.png", &picture).await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_file_in_a_group_goes_to_every_contact_in_it() {
    let mut scene = Scene::start().await;
    let (mut alice, mut carol, group) = super::groups::group_of_three(&mut scene).await;
    let plan = pattern(50_000);
    let event_id = user_sends_file(&mut scene, &group, ("m.file", "plan.txt"), plan.clone()).await;
    for (contact, who) in [(&mut alice, "Alice"), (&mut carol, "Carol")] {
        contact_has(contact, who, "plan.txt", &plan).await;
    }
    assert_eq!(
        status_of(&scene, &group, &event_id).await,
        SendStatus::Delivered
    );
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_file_that_came_while_the_homeserver_was_away_is_posted_after_a_restart() {
    let mut scene = Scene::start().await;
    let (alice, portal) = scene.chat_with_alice("one moment").await;
    scene.hs.set_down(true);
    let picture = png(20_000);
    alice_sends(&alice, alice_file("late.png", &picture))
        .await
        .expect("the bridge takes the picture");
    // The bridge stops before the homeserver is back; the picture waits on disk.
    let dir = scene.config.msn.file_dir();
    until("the picture kept on disk", || {
        (!files_left(&dir).is_empty()).then_some(())
    })
    .await;
    let world = scene.stop().await;
    world.hs.set_down(false);
    // What a run cut short leaves: a partial transfer and a Matrix file never sent. Old
    // ones go at the next start; a file that is not the bridge's stays.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let left = ["from-msn-00000000deadbeef.part", "to-msn-00000000deadbeef"];
    for name in left.iter().chain(["notes.txt"].iter()) {
        let file = std::fs::File::create(dir.join(name)).expect("a leftover");
        file.set_modified(hour_ago).expect("an old time");
    }
    let scene = Scene::start_in(world).await;
    let (msgtype, bytes, _, _) = posted(&scene, &portal, "late.png").await;
    assert_eq!(msgtype, "m.image");
    assert!(bytes == picture, "identical bytes");
    let posts = scene
        .hs
        .room(&portal)
        .map(|r| r.timeline.iter().filter(|e| e.body == "late.png").count())
        .unwrap_or_default();
    assert_eq!(posts, 1, "posted once");
    until("the bridge's copy and the leftovers to go", || {
        (files_left(&dir) == [dir.join("notes.txt")]).then_some(())
    })
    .await;
    drop(alice);
    scene.stop().await;
}
