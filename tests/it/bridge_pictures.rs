//! Display pictures through the whole bridge (Synapse, the bridge, the test MSN server, an
//! `msnp11-sdk` contact, a matrix-sdk user): the contact's MSN picture becomes its
//! puppet's avatar (the same bytes, uploaded to the homeserver), and the user's Matrix
//! avatar becomes their MSN display picture, which the contact's client fetches over
//! MSNSLP.

use matrix_sdk::ruma::events::room::member::MembershipState;
use msn_testkit::ServerEvent;
use msnp11_sdk::Event;
use serde_json::Value;
use tokio::time::timeout;

use crate::bridge_e2e::{ALICE, BOB, PUPPET_ALICE, alice_opens, scene};
use crate::e2e::{Seen, User, new_user, unique};
use crate::support;
use crate::testkit_msnp11_sdk as sdk;

/// An 8×8 orange PNG: a real image, so the homeserver can make thumbnails of it.
pub(crate) const AVATAR_PNG: [u8; 75] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x02, 0x00, 0x00, 0x00, 0x4b, 0x6d, 0x29,
    0xdc, 0x00, 0x00, 0x00, 0x12, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xef, 0xc0, 0x80,
    0x15, 0x61, 0x17, 0x1d, 0xb4, 0x12, 0x00, 0x69, 0x59, 0x4f, 0xc1, 0x72, 0xea, 0xc0, 0xc5, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Plain client-server calls as `user` (media and profile, which the test drives by hand).
struct Http {
    hs: String,
    user_id: String,
    token: String,
    http: reqwest::Client,
}

impl Http {
    fn new(hs: &str, user: &User) -> Self {
        Http {
            hs: hs.to_owned(),
            user_id: user.user_id.to_string(),
            token: user.client.access_token().expect("logged in"),
            http: reqwest::Client::new(),
        }
    }

    async fn set_avatar(&self, data: &[u8]) -> String {
        let uploaded: Value = self
            .http
            .post(format!("{}/_matrix/media/v3/upload", self.hs))
            .bearer_auth(&self.token)
            .header("Content-Type", "image/png")
            .body(data.to_vec())
            .send()
            .await
            .expect("upload")
            .json()
            .await
            .expect("upload answer");
        let mxc = uploaded["content_uri"].as_str().expect("mxc").to_owned();
        let status = self
            .http
            .put(format!(
                "{}/_matrix/client/v3/profile/{}/avatar_url",
                self.hs, self.user_id
            ))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "avatar_url": mxc }))
            .send()
            .await
            .expect("set avatar")
            .status();
        assert!(status.is_success(), "set avatar: {status}");
        mxc
    }

    /// The bytes of `mxc`, or of its thumbnail scaled to fit 96×96.
    async fn media(&self, mxc: &str, thumbnail: bool) -> Vec<u8> {
        let path = mxc.strip_prefix("mxc://").expect("mxc URI");
        let url = if thumbnail {
            format!(
                "{}/_matrix/client/v1/media/thumbnail/{path}?width=96&height=96&method=scale",
                self.hs
            )
        } else {
            format!("{}/_matrix/client/v1/media/download/{path}", self.hs)
        };
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("download");
        assert!(
            response.status().is_success(),
            "{mxc}: {}",
            response.status()
        );
        response.bytes().await.expect("media bytes").to_vec()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_display_pictures_both_ways() {
    display_pictures_both_ways(8..=12).await;
}

/// The same with the bridge on MSNP18 (MSNSLP over P2P v1 still), Alice on MSNP12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_display_pictures_both_ways_on_msnp18() {
    display_pictures_both_ways(8..=18).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_display_pictures_both_ways_on_msnp15() {
    display_pictures_both_ways_offering(8..=18, Some(vec![15])).await;
}

async fn display_pictures_both_ways(versions: std::ops::RangeInclusive<u8>) {
    display_pictures_both_ways_offering(versions, None).await;
}

async fn display_pictures_both_ways_offering(
    versions: std::ops::RangeInclusive<u8>,
    offered: Option<Vec<u8>>,
) {
    let negotiated = offered
        .as_ref()
        .and_then(|o| o.first().copied())
        .unwrap_or(*versions.end());
    let Some((scene, bridge)) = crate::bridge_e2e::scene_offering(versions, offered).await else {
        return;
    };
    let (hs, msn) = (scene.hs.as_str(), &scene.msn);

    // Alice (MSN) shows a picture of many P2P chunks.
    let alice_picture = sdk::picture(9_000, 5);
    let (alice, mut alice_events) = sdk::login(msn, ALICE).await;
    // The SDK announces its picture with its next status change.
    timeout(sdk::T, alice.set_display_picture(alice_picture.clone()))
        .await
        .expect("set picture hangs")
        .expect("set picture");
    sdk::online(&alice).await;

    // Bob (Matrix) has an avatar, then logs in.
    let mut bob = new_user(hs, &unique("pbob"), "bob-password-7").await;
    let http = Http::new(hs, &bob);
    let bob_avatar = http.set_avatar(&AVATAR_PNG).await;
    let served = [
        http.media(&bob_avatar, true).await,
        http.media(&bob_avatar, false).await,
    ];
    bob.log_in_to_msn().await;
    assert_eq!(msn.version(BOB), Some(negotiated));

    // Alice's client sees Bob's msnobj and fetches his picture over MSNSLP: his avatar,
    // as the homeserver's 96×96 thumbnail (or the original where it made none).
    let presence = sdk::wait_for(&mut alice_events, "bob's msnobj", |e| {
        matches!(e, Event::PresenceUpdate { email, presence, .. } | Event::InitialPresenceUpdate { email, presence, .. }
            if email == BOB && presence.msn_object_string.is_some())
    })
    .await;
    let (Event::PresenceUpdate { presence, .. } | Event::InitialPresenceUpdate { presence, .. }) =
        presence
    else {
        unreachable!()
    };
    let msnobj = presence.msn_object_string.expect("msnobj");
    let (alice_sb, mut alice_sb_events) = alice_opens(&alice).await;
    alice_fetches_bobs_picture(&alice_sb, &mut alice_sb_events, &msnobj, &served).await;

    // Alice writes; in the portal her puppet shows her MSN picture, byte for byte.
    sdk::say(&alice_sb, "see my picture").await;
    let portal = bob.accept_invite().await;
    bob.text_from(&portal, PUPPET_ALICE, "see my picture").await;
    let avatar = match puppet_avatar(&bob, &portal).await {
        Some(avatar) => avatar,
        // Not set yet: its member event is still to come.
        None => match bob
            .wait_for("alice's puppet with an avatar", |s| {
                matches!(s, Seen::Member { room, target, membership: MembershipState::Join, avatar_url: Some(_), .. }
                    if *room == portal && target == PUPPET_ALICE)
            })
            .await
        {
            Seen::Member {
                avatar_url: Some(avatar),
                ..
            } => avatar,
            other => panic!("unexpected {other:?}"),
        },
    };
    assert_eq!(http.media(&avatar, false).await, alice_picture);
    bridge.stop().await;
}

/// The avatar of alice's puppet in `room` as bob's client knows it now (its member event
/// may have come while the test waited for something else).
async fn puppet_avatar(bob: &User, room: &matrix_sdk::ruma::OwnedRoomId) -> Option<String> {
    let room = bob.client.get_room(room).expect("portal known");
    let puppet = matrix_sdk::ruma::UserId::parse(PUPPET_ALICE).expect("puppet ID");
    let member = room
        .get_member_no_sync(&puppet)
        .await
        .expect("room members readable")?;
    member.avatar_url().map(ToString::to_string)
}

/// A custom emoticon from MSN reaches Matrix as an inline image (`data-mx-emoticon`) whose
/// content is the emoticon's picture, fetched over MSNSLP and uploaded by the bridge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_custom_emoticons_arrive_as_inline_images() {
    let Some((scene, bridge)) = scene().await else {
        return;
    };
    let mut bob = new_user(&scene.hs, &unique("ebob"), "bob-password-8").await;
    bob.log_in_to_msn().await;
    let alice = crate::link::alice_writes_with_emoticon(&scene.msn, BOB).await;

    let portal = bob.accept_invite().await;
    let html = bob
        .text_from(&portal, PUPPET_ALICE, "look (cat)!")
        .await
        .expect("formatted body");
    let image = html
        .split("<img ")
        .nth(1)
        .unwrap_or_else(|| panic!("no inline image in {html:?}"));
    assert!(html.starts_with("look "), "{html}");
    assert!(image.starts_with("data-mx-emoticon"), "{html}");
    assert!(image.contains(r#"alt="(cat)""#), "{html}");
    let mxc = image
        .split_once(r#"src=""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(src, _)| src)
        .unwrap_or_else(|| panic!("no src in {html:?}"));
    assert_eq!(
        Http::new(&scene.hs, &bob).media(mxc, false).await,
        alice.cat
    );
    bridge.stop().await;
}

/// Alice's client fetches Bob's picture `msnobj` over MSNSLP and gets one of `served`
/// (his avatar as the homeserver's thumbnail, or the original where it made none).
async fn alice_fetches_bobs_picture(
    alice_sb: &msnp11_sdk::Switchboard,
    alice_sb_events: &mut sdk::Events,
    msnobj: &str,
    served: &[Vec<u8>],
) {
    timeout(
        sdk::T,
        alice_sb.request_contact_display_picture(BOB, msnobj),
    )
    .await
    .expect("SDK fetch hangs")
    .expect("SDK fetch");
    let got = sdk::wait_for(
        alice_sb_events,
        "bob's picture",
        |e| matches!(e, Event::DisplayPicture { email, .. } if email == BOB),
    )
    .await;
    let Event::DisplayPicture { data, .. } = got else {
        unreachable!()
    };
    assert!(
        served.contains(&data),
        "alice got {} bytes that are not bob's avatar",
        data.len()
    );
}

/// Bob's msnobj as Alice last saw it in his presence (`None`: no msnobj at all).
fn msnobj_of(event: &Event) -> Option<Option<String>> {
    match event {
        Event::PresenceUpdate {
            email, presence, ..
        }
        | Event::InitialPresenceUpdate {
            email, presence, ..
        } if email == BOB => Some(presence.msn_object_string.clone()),
        _ => None,
    }
}

/// On a server that tells contacts only about status changes (Escargot, MSNP.md §2.8), a
/// new picture announced with an unchanged status goes unseen: the contact still has the
/// empty `<msnobj/>` and asks for that. The bridge declines it, as it must, and announces
/// its picture again with a brief status change; the contact then fetches the new one.
/// (Found against a real server: the user's Matrix avatar never reached the contact.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_a_new_picture_reaches_contacts_where_only_status_changes_are_relayed() {
    let Some((scene, bridge)) = scene().await else {
        return;
    };
    let (hs, msn) = (scene.hs.as_str(), &scene.msn);
    msn.escargot_presence(true);
    let (alice, mut alice_events) = sdk::login(msn, ALICE).await;
    sdk::online(&alice).await;
    let mut bob = new_user(hs, &unique("ebob"), "bob-password-14").await;
    bob.log_in_to_msn().await;
    let seen = sdk::wait_for(&mut alice_events, "bob online", |e| msnobj_of(e).is_some()).await;
    let stale = msnobj_of(&seen)
        .flatten()
        .expect("Escargot names an empty msnobj");

    // Bob sets a Matrix avatar: the bridge's same-status CHG is not relayed.
    let mut server_events = msn.subscribe();
    let http = Http::new(hs, &bob);
    let avatar = http.set_avatar(&AVATAR_PNG).await;
    support::wait_for(
        &mut server_events,
        sdk::T,
        "bob's CHG with his picture",
        |e| {
            matches!(e, ServerEvent::Frame { email: Some(email), frame }
            if email == BOB && frame.verb == "CHG" && frame.args.len() >= 3)
        },
    )
    .await;
    let served = [
        http.media(&avatar, true).await,
        http.media(&avatar, false).await,
    ];
    // Alice asks for the picture she knows of: declined, and announced again.
    let (alice_sb, mut alice_sb_events) = alice_opens(&alice).await;
    // (The SDK hears no answer to a declined request: it runs beside the wait.)
    let seen = {
        let request = alice_sb.request_contact_display_picture(BOB, &stale);
        tokio::pin!(request);
        let new_msnobj = sdk::wait_for(&mut alice_events, "bob's new msnobj", |e| {
            msnobj_of(e).flatten().is_some_and(|obj| obj != stale)
        });
        tokio::pin!(new_msnobj);
        let mut asked = false;
        loop {
            tokio::select! {
                seen = &mut new_msnobj => break seen,
                _ = &mut request, if !asked => asked = true,
            }
        }
    };
    let msnobj = msnobj_of(&seen).flatten().expect("msnobj");
    alice_fetches_bobs_picture(&alice_sb, &mut alice_sb_events, &msnobj, &served).await;
    bridge.stop().await;
}
