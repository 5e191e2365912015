//! The contact base against real databases: every scenario runs on SQLite and on PostgreSQL.

mod support;

use domain::{CampaignStatus, ContactStatus, Disposition, DispositionKind, Outcome};
use std::collections::HashSet;
use std::time::Duration;
use store::{
    Applied, AttemptEvent, AttemptQuery, ContactQuery, DncScope, Finish, LeaseOptions, Store,
};
use support::{ALWAYS_OPEN, campaign, import, spec, utc};

const LEASE: Duration = Duration::from_secs(120);

async fn campaigns_are_created_updated_and_listed(store: Store) {
    let (created, applied) = store.apply_campaign(&spec("spring", "")).await.unwrap();
    assert_eq!(applied, Applied::Created);
    assert_eq!(created.status, CampaignStatus::Paused);
    let (_, applied) = store.apply_campaign(&spec("spring", "")).await.unwrap();
    assert_eq!(applied, Applied::Unchanged);
    let (updated, applied) = store
        .apply_campaign(&spec("spring", "ring_timeout = \"30s\""))
        .await
        .unwrap();
    assert_eq!(applied, Applied::Updated);
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.spec.ring_timeout, domain::Dur::secs(30));
    store.apply_campaign(&spec("autumn", "")).await.unwrap();
    let names: Vec<String> = store
        .campaigns()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["autumn", "spring"]);
    store
        .set_campaign_status(created.id, CampaignStatus::Running)
        .await
        .unwrap();
    let again = store.campaign_by_name("spring").await.unwrap().unwrap();
    assert_eq!(again.status, CampaignStatus::Running);
    assert_eq!(
        store.campaign(created.id).await.unwrap().unwrap().name,
        "spring"
    );
    assert!(store.campaign_by_name("winter").await.unwrap().is_none());
}
on_both!(campaigns_are_created_updated_and_listed);

/// Every kind of bad row, with the line it must be reported on.
const BROKEN: &[u8] = b"name,phone,timezone,city\n\
Ann,(212) 555-0100,,NYC\n\
Bob,212-555-0100,,NYC\n\
Cy,n/a,,Nowhere\n\
Di,2125550101,,NYC,extra\n\
Ed,+1 312 555 0102,Mars/Base,Chicago\n\
\"Fay\non two lines\",415-555-0103,,SF\n\
Gus,\xff\xfe,,Bad\n\
Hal,(202) 555-0104,,DC\n\
Ida,555-01,,X\n\
Jo,+44 20 7946 0018,Europe/London,London\n";

async fn a_broken_file_reports_every_bad_row(store: Store) {
    let c = campaign(&store, "broken", "").await;
    store
        .add_dnc(DncScope::Global, &["+12025550104".to_owned()], "test")
        .await
        .unwrap();
    let options = store::ImportOptions::default();
    let summary = store
        .import_csv(c.id, std::io::Cursor::new(BROKEN.to_vec()), &options)
        .await
        .unwrap();
    assert_eq!(summary.rows, 10, "{summary:#?}");
    assert_eq!(summary.imported, 3, "{summary:#?}");
    assert_eq!(summary.duplicates, 1, "{summary:#?}");
    assert_eq!(summary.dnc, 1, "{summary:#?}");
    assert_eq!(summary.rejected, 5, "{summary:#?}");
    let lines: Vec<u64> = summary.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [4, 5, 6, 9, 11], "{summary:#?}");
    let reasons: Vec<&str> = summary.errors.iter().map(|e| e.reason.as_str()).collect();
    assert!(reasons[0].contains("`n/a`"), "{reasons:?}");
    assert!(
        reasons[1].contains("expected 4 columns, found 5"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("unknown time zone `Mars/Base`"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("not valid UTF-8"), "{reasons:?}");
    assert!(reasons[4].contains("`555-01`"), "{reasons:?}");

    let contacts = store
        .contacts(&ContactQuery {
            campaign_id: c.id,
            status: Some(ContactStatus::Pending),
            ..Default::default()
        })
        .await
        .unwrap();
    let numbers: Vec<&str> = contacts.iter().map(|c| c.e164.as_str()).collect();
    assert_eq!(numbers, ["+12125550100", "+14155550103", "+442079460018"]);
    assert_eq!(contacts[0].zones, ["America/New_York"]);
    assert_eq!(contacts[1].extra["name"], "Fay\non two lines");
    assert_eq!(contacts[2].zones, ["Europe/London"]);
    // The do-not-call row is stored, flagged, so lifting the entry later makes it callable.
    let flagged = store
        .contacts(&ContactQuery {
            campaign_id: c.id,
            status: Some(ContactStatus::Dnc),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].e164, "+12025550104");
    assert_eq!(flagged[0].extra["name"], "Hal");

    // The same file again adds nothing.
    let again = store
        .import_csv(c.id, std::io::Cursor::new(BROKEN.to_vec()), &options)
        .await
        .unwrap();
    assert_eq!(again.imported, 0, "{again:#?}");
    assert_eq!(again.duplicates, 5, "{again:#?}");
    assert_eq!(again.dnc, 0, "{again:#?}");
    assert_eq!(again.rejected, 5);
    let counts = store.contact_counts(c.id).await.unwrap();
    assert_eq!(
        counts,
        [(ContactStatus::Pending, 3), (ContactStatus::Dnc, 1)]
    );
}
on_both!(a_broken_file_reports_every_bad_row);

async fn a_generated_list_imports_with_the_expected_counts(store: Store) {
    let c = campaign(&store, "generated", "").await;
    let mut csv = Vec::new();
    let mix = store::sample::ListShape {
        rows: 5000,
        ..Default::default()
    };
    let written = store::sample::write_csv(&mut csv, &mix).unwrap();
    let summary = store
        .import_csv(
            c.id,
            std::io::Cursor::new(csv.clone()),
            &store::ImportOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.rows, written.rows);
    assert_eq!(
        summary.rejected,
        written.bad,
        "{:?}",
        &summary.errors[..5.min(summary.errors.len())]
    );
    assert_eq!(summary.duplicates, written.duplicates);
    assert_eq!(
        summary.imported,
        written.rows - written.bad - written.duplicates
    );
    // The same file again, this time from an async reader (as an HTTP upload would be).
    let again = store
        .import_csv_async(
            c.id,
            tokio::io::BufReader::new(std::io::Cursor::new(csv)),
            &store::ImportOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.imported, 0);
    assert_eq!(again.rejected, written.bad);
}
on_both!(a_generated_list_imports_with_the_expected_counts);

const NY: &str = "name,phone\nA,212-555-0001\nB,212-555-0002\nC,212-555-0003\n";

async fn leasing_honours_attempts_due_time_and_leases(store: Store) {
    let c = campaign(&store, "lease", "[retry]\nmax_attempts = 2\n").await;
    import(&store, c.id, NY).await;
    // Wednesday 14 July 2027, 16:00 UTC = 12:00 in New York.
    let noon = utc(2027, 7, 14, 16, 0);
    let first = store.lease_due(c.id, "n1", 2, noon, LEASE).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(
        first[0].zones.iter().map(|z| z.name()).collect::<Vec<_>>(),
        ["America/New_York"]
    );
    let second = store.lease_due(c.id, "n2", 10, noon, LEASE).await.unwrap();
    assert_eq!(second.len(), 1, "leased contacts are not handed out twice");
    assert!(
        store
            .lease_due(c.id, "n3", 10, noon, LEASE)
            .await
            .unwrap()
            .is_empty()
    );

    // An expired lease makes the contact due again, for anyone.
    let later = noon + chrono::Duration::seconds(121);
    let back = store.lease_due(c.id, "n3", 10, later, LEASE).await.unwrap();
    assert_eq!(back.len(), 3);

    // A renewed lease (a call still going on) keeps the contact from everyone past the
    // original expiry; another node cannot renew what it does not hold.
    let ids: Vec<i64> = back.iter().map(|c| c.id).collect();
    let longer = later + chrono::Duration::seconds(600);
    assert_eq!(store.renew(&ids, "someone-else", longer).await.unwrap(), 0);
    assert_eq!(store.renew(&ids[..1], "n3", longer).await.unwrap(), 1);
    let past_first = later + chrono::Duration::seconds(121);
    let others = store
        .lease_due(c.id, "n5", 10, past_first, LEASE)
        .await
        .unwrap();
    assert_eq!(others.len(), 2, "the renewed lease still holds");
    assert!(others.iter().all(|l| l.id != ids[0]));
    assert_eq!(store.release_node("n5").await.unwrap(), 2);
    let (node, until) = store.lease_of(ids[0]).await.unwrap().unwrap();
    assert_eq!((node.as_str(), until), ("n3", longer));

    // Released contacts are due at once; another node's release does nothing.
    assert_eq!(store.release(&ids, "someone-else").await.unwrap(), 0);
    assert_eq!(store.release(&ids[..1], "n3").await.unwrap(), 1);
    assert_eq!(
        store.release_node("n3").await.unwrap(),
        0,
        "n5 took the others"
    );
    // Stored times are whole milliseconds. A fixed time, not the clock: the contacts are in
    // New York, whose calling hours the clock is outside for half of every day (this test
    // failed whenever it ran after 20:00 there).
    let now = utc(2027, 7, 15, 16, 0) + chrono::Duration::milliseconds(1234);
    let all = store.lease_due(c.id, "n4", 10, now, LEASE).await.unwrap();
    assert_eq!(all.len(), 3);
    let (node, until) = store.lease_of(all[0].id).await.unwrap().unwrap();
    assert_eq!(node, "n4");
    assert_eq!(until, all[0].lease_until);

    // Busy twice: the second attempt exhausts max_attempts = 2.
    let contact = all[0].id;
    for round in 0..2 {
        let at = now + chrono::Duration::hours(round);
        if round == 1 {
            let again = store.lease_due(c.id, "n4", 10, at, LEASE).await.unwrap();
            assert!(
                again.iter().any(|l| l.id == contact),
                "due again after the busy delay"
            );
        }
        let attempt = store.start_attempt(contact, "n4", at).await.unwrap();
        let after = store
            .finish_attempt(
                attempt,
                &Finish {
                    outcome: Outcome::Busy,
                    sip_code: Some(486),
                    reason: None,
                    ended_at: at,
                },
            )
            .await
            .unwrap();
        if round == 0 {
            assert_eq!(after.status, ContactStatus::Pending);
            assert_eq!(
                after.next_attempt_at,
                Some(at + chrono::Duration::minutes(15))
            );
            assert!(
                store.lease_of(contact).await.unwrap().is_none(),
                "lease cleared"
            );
        } else {
            assert_eq!(after.status, ContactStatus::Exhausted);
        }
    }
    let far = now + chrono::Duration::days(2);
    store.release_node("n4").await.unwrap();
    let left = store.lease_due(c.id, "n5", 10, far, LEASE).await.unwrap();
    assert!(left.iter().all(|l| l.id != contact), "no attempts left");
}
on_both!(leasing_honours_attempts_due_time_and_leases);

async fn calling_hours_follow_dst_and_multi_zone_prefixes(store: Store) {
    let c = campaign(&store, "hours", "").await;
    // Explicit zones, and 208-399 which libphonenumber puts in both Boise and Los Angeles.
    import(
        &store,
        c.id,
        "phone,tz\n212-555-0001,America/New_York\n602-555-0002,America/Phoenix\n208-399-0003,\n",
    )
    .await;
    let names = |leased: &[store::LeasedContact]| -> HashSet<String> {
        leased.iter().map(|l| l.e164.clone()).collect()
    };
    // Tuesday 9 March 2027, 12:30 UTC: New York is still on EST (07:30, closed).
    let before_dst = store
        .lease_due(c.id, "n", 10, utc(2027, 3, 9, 12, 30), LEASE)
        .await
        .unwrap();
    assert!(before_dst.is_empty(), "{before_dst:?}");
    // Tuesday 16 March 2027, 12:30 UTC: EDT since the 14th, 08:30 in New York; Phoenix keeps
    // MST all year (05:30, closed).
    let after_dst = store
        .lease_due(c.id, "n", 10, utc(2027, 3, 16, 12, 30), LEASE)
        .await
        .unwrap();
    assert_eq!(
        names(&after_dst),
        HashSet::from(["+12125550001".to_owned()])
    );
    store.release_node("n").await.unwrap();
    // 14:30 UTC in July: Boise 08:30 (open) but Los Angeles 07:30 (closed): the Idaho number
    // waits for both. Phoenix is 07:30: closed.
    let july = store
        .lease_due(c.id, "m", 10, utc(2027, 7, 14, 14, 30), LEASE)
        .await
        .unwrap();
    assert_eq!(names(&july), HashSet::from(["+12125550001".to_owned()]));
    store.release_node("m").await.unwrap();
    let later = store
        .lease_due(c.id, "m", 10, utc(2027, 7, 14, 15, 30), LEASE)
        .await
        .unwrap();
    assert_eq!(names(&later).len(), 3, "{later:?}");
    let idaho = later.iter().find(|l| l.e164 == "+12083990003").unwrap();
    let zones: Vec<&str> = idaho.zones.iter().map(|z| z.name()).collect();
    assert_eq!(zones, ["America/Boise", "America/Los_Angeles"]);
    // The engine's last check before dialling is the same pure function.
    let hours = &c.spec.calling_hours;
    assert!(hours.is_open(&idaho.zones, utc(2027, 7, 14, 15, 30)));
    assert!(!hours.is_open(&idaho.zones, utc(2027, 7, 14, 14, 30)));
}
on_both!(calling_hours_follow_dst_and_multi_zone_prefixes);

async fn do_not_call_applies_at_import_and_at_lease_time(store: Store) {
    let c = campaign(&store, "dnc", ALWAYS_OPEN).await;
    let other = campaign(&store, "other", ALWAYS_OPEN).await;
    store
        .add_dnc(
            DncScope::Campaign(c.id),
            &["+12125550001".to_owned()],
            "test",
        )
        .await
        .unwrap();
    let summary = import(&store, c.id, NY).await;
    assert_eq!((summary.imported, summary.dnc), (2, 1));
    // The campaign list does not apply to another campaign.
    assert_eq!(import(&store, other.id, NY).await.imported, 3);
    assert!(store.is_dnc(c.id, "+12125550001").await.unwrap());
    assert!(!store.is_dnc(other.id, "+12125550001").await.unwrap());

    // Added after import: never leased, in any campaign (global list).
    let loaded = store
        .import_dnc(
            std::io::Cursor::new(b"phone\n(212) 555-0002\nnot a number\n".to_vec()),
            DncScope::Global,
            domain::Country::US,
            "file",
        )
        .await
        .unwrap();
    assert_eq!((loaded.added, loaded.rejected), (1, 1));
    assert_eq!(loaded.errors[0].line, 3);
    let now = utc(2027, 7, 14, 16, 0);
    let leased = store.lease_due(c.id, "n", 10, now, LEASE).await.unwrap();
    let numbers: Vec<&str> = leased.iter().map(|l| l.e164.as_str()).collect();
    assert_eq!(numbers, ["+12125550003"]);
    let leased = store
        .lease_due(other.id, "n", 10, now, LEASE)
        .await
        .unwrap();
    assert_eq!(leased.len(), 2);
    assert!(leased.iter().all(|l| l.e164 != "+12125550002"));

    // Listed while leased: the attempt is refused and no row is written; the other
    // campaign's list does not touch it.
    let (listed, kept) = (&leased[0], &leased[1]);
    store
        .add_dnc(
            DncScope::Campaign(other.id),
            std::slice::from_ref(&listed.e164),
            "test",
        )
        .await
        .unwrap();
    match store.start_attempt(listed.id, "n", now).await {
        Err(store::Error::DoNotCall(e164)) => assert_eq!(e164, listed.e164),
        other => panic!("attempt on a listed number: {other:?}"),
    }
    let attempts = store
        .attempts(&AttemptQuery {
            campaign_id: Some(other.id),
            ..AttemptQuery::default()
        })
        .await
        .unwrap();
    assert!(attempts.is_empty(), "{attempts:?}");
    let id = store.start_attempt(kept.id, "n", now).await.unwrap();
    assert!(id > 0);
    assert!(matches!(
        store.start_attempt(-1, "n", now).await,
        Err(store::Error::NoSuchContact(-1))
    ));
}
on_both!(do_not_call_applies_at_import_and_at_lease_time);

async fn outcomes_dispositions_and_callbacks(store: Store) {
    let c = campaign(&store, "outcomes", ALWAYS_OPEN).await;
    import(&store, c.id, NY).await;
    let agent = store
        .create_agent(&store::NewAgent {
            username: "alice".into(),
            display_name: "Alice".into(),
            password: "correct horse".into(),
            realm: "dialer".into(),
            campaigns: vec![c.id],
        })
        .await
        .unwrap();
    let t0 = utc(2027, 7, 14, 16, 0);
    let leased = store.lease_due(c.id, "n", 3, t0, LEASE).await.unwrap();
    assert_eq!(leased.len(), 3);

    // 1: answered, bridged, agent promises a personal callback tomorrow.
    let a1 = store.start_attempt(leased[0].id, "n", t0).await.unwrap();
    for (event, secs) in [
        (AttemptEvent::Ringing, 1),
        (AttemptEvent::Answered, 6),
        (AttemptEvent::Amd(domain::AmdResult::Human), 8),
        (AttemptEvent::Bridged { agent_id: agent.id }, 9),
    ] {
        store
            .attempt_event(a1, event, t0 + chrono::Duration::seconds(secs))
            .await
            .unwrap();
    }
    let ended = t0 + chrono::Duration::seconds(90);
    let done = store
        .finish_attempt(
            a1,
            &Finish {
                outcome: Outcome::Connected,
                sip_code: Some(200),
                reason: None,
                ended_at: ended,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, ContactStatus::Done);
    let tomorrow = t0 + chrono::Duration::days(1);
    let after = store
        .set_disposition(
            a1,
            Some(agent.id),
            &Disposition {
                kind: DispositionKind::Callback,
                note: Some("call after lunch".into()),
                callback_at: Some(tomorrow),
                callback_personal: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(after.status, ContactStatus::Callback);
    assert_eq!(after.next_attempt_at, Some(tomorrow));
    let stored = store.attempt(a1).await.unwrap();
    assert_eq!(stored.agent_id, Some(agent.id));
    assert_eq!(stored.amd_result, Some(domain::AmdResult::Human));
    assert_eq!(stored.outcome, Some(Outcome::Connected));

    // 2: a SIT tone: never redialled. 3: abandoned, then retried.
    let a2 = store.start_attempt(leased[1].id, "n", t0).await.unwrap();
    let invalid = store
        .finish_attempt(
            a2,
            &Finish {
                outcome: Outcome::InvalidNumber,
                sip_code: None,
                reason: Some("SIT".into()),
                ended_at: t0,
            },
        )
        .await
        .unwrap();
    assert_eq!(invalid.status, ContactStatus::Invalid);
    let a3 = store.start_attempt(leased[2].id, "n", t0).await.unwrap();
    let abandoned = store
        .finish_attempt(
            a3,
            &Finish {
                outcome: Outcome::Abandoned,
                sip_code: Some(200),
                reason: None,
                ended_at: t0,
            },
        )
        .await
        .unwrap();
    assert_eq!(abandoned.status, ContactStatus::Pending);
    assert!(
        store
            .finish_attempt(
                a3,
                &Finish {
                    outcome: Outcome::Busy,
                    sip_code: None,
                    reason: None,
                    ended_at: t0
                }
            )
            .await
            .is_err(),
        "an attempt finishes once"
    );

    let counts = store
        .abandon_counts(c.id, t0 - chrono::Duration::hours(24))
        .await
        .unwrap();
    assert_eq!((counts.live_answers, counts.abandons), (2, 1));
    let counts = store
        .abandon_counts(c.id, t0 + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        (counts.live_answers, counts.abandons),
        (1, 0),
        "only the call ended at +90s"
    );

    // Tomorrow: the personal callback goes first, but only when its agent is ready.
    let t1 = tomorrow + chrono::Duration::minutes(1);
    let without = store.lease_due(c.id, "n", 10, t1, LEASE).await.unwrap();
    assert!(without.iter().all(|l| !l.callback), "{without:?}");
    store.release_node("n").await.unwrap();
    let with = store
        .lease_due_with(
            c.id,
            "n",
            1,
            t1,
            LEASE,
            &LeaseOptions {
                callback_agents: vec![agent.id],
            },
        )
        .await
        .unwrap();
    assert_eq!(with.len(), 1);
    assert!(with[0].callback);
    assert_eq!(with[0].callback_agent_id, Some(agent.id));

    // The callee asks not to be called: effective at once, everywhere.
    let a4 = store.start_attempt(with[0].id, "n", t1).await.unwrap();
    store
        .finish_attempt(
            a4,
            &Finish {
                outcome: Outcome::Connected,
                sip_code: Some(200),
                reason: None,
                ended_at: t1,
            },
        )
        .await
        .unwrap();
    let after = store
        .set_disposition(
            a4,
            Some(agent.id),
            &Disposition {
                kind: DispositionKind::DoNotCall,
                note: None,
                callback_at: None,
                callback_personal: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(after.status, ContactStatus::Dnc);
    assert!(store.is_dnc(c.id, &with[0].e164).await.unwrap());

    // Paging and filters for the API.
    let by_outcome = store
        .attempts(&AttemptQuery {
            campaign_id: Some(c.id),
            outcome: Some(Outcome::Connected),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_outcome.iter().map(|a| a.id).collect::<Vec<_>>(),
        [a1, a4]
    );
    let in_range = store
        .attempts(&AttemptQuery {
            campaign_id: Some(c.id),
            from: Some(t1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(in_range.len(), 1);
    let page1 = store
        .contacts(&ContactQuery {
            campaign_id: c.id,
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let page2 = store
        .contacts(&ContactQuery {
            campaign_id: c.id,
            limit: 2,
            after_id: Some(page1[1].id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page1.len() + page2.len(), 3);
    let invalid = store
        .contacts(&ContactQuery {
            campaign_id: c.id,
            status: Some(ContactStatus::Invalid),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(invalid.len(), 1);
    let by_number = store
        .contacts(&ContactQuery {
            campaign_id: c.id,
            number_prefix: Some("+1212555000".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_number.len(), 3);

    // Export: one line per contact with its status and last outcome.
    let mut out = Vec::new();
    assert_eq!(store.export_csv(c.id, &mut out).await.unwrap(), 3);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("phone,status,attempts,last_outcome,"),
        "{text}"
    );
    assert!(
        text.contains("+12125550002,invalid,1,invalid_number"),
        "{text}"
    );
    assert!(text.contains(",dnc,2,connected,"), "{text}");
}
on_both!(outcomes_dispositions_and_callbacks);

async fn agents_store_digest_credentials(store: Store) {
    let c = campaign(&store, "agents", "").await;
    let new = store::NewAgent {
        username: "bob".into(),
        display_name: "Bob B.".into(),
        password: "s3cret-pass".into(),
        realm: "dialer.example".into(),
        campaigns: vec![c.id],
    };
    let bob = store.create_agent(&new).await.unwrap();
    assert!(matches!(
        store.create_agent(&new).await,
        Err(store::Error::AgentExists(_))
    ));
    let found = store.agent_by_username("bob").await.unwrap().unwrap();
    assert_eq!(found, bob);
    assert_eq!(found.campaigns, [c.id]);
    let (md5, sha) = store::digest_ha1("bob", "dialer.example", "s3cret-pass");
    assert_eq!(
        (found.ha1_md5.as_str(), found.ha1_sha256.as_str()),
        (md5.as_str(), sha.as_str())
    );
    assert_eq!(store.agents().await.unwrap().len(), 1);
    assert_eq!(
        store.campaign_agents(c.id).await.unwrap()[0].username,
        "bob"
    );
}
on_both!(agents_store_digest_credentials);

/// Imports `rows` generated contacts (no bad rows, no duplicates) into campaign `id`.
async fn import_sample(store: &Store, id: i64, rows: u64, seed: u64) -> store::ImportSummary {
    let mut csv = Vec::new();
    let mix = store::sample::ListShape {
        rows,
        bad: 0.0,
        duplicates: 0.0,
        seed,
    };
    store::sample::write_csv(&mut csv, &mix).unwrap();
    store
        .import_csv(
            id,
            std::io::Cursor::new(csv),
            &store::ImportOptions::default(),
        )
        .await
        .unwrap()
}

/// Two nodes leasing at the same time on PostgreSQL never get the same contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_leasers_never_overlap_on_postgres() {
    let Some(db) = testkit::postgres().await else {
        return;
    };
    let store = support::connect(db.url()).await;
    let c = campaign(&store, "race", ALWAYS_OPEN).await;
    let summary = import_sample(&store, c.id, 3000, 7).await;
    let now = chrono::Utc::now() + chrono::Duration::seconds(5);
    let leaser = |node: &'static str| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                // Rows the other node has locked are skipped, not waited for; a node stops
                // only when it finds nothing, which happens once the campaign is drained.
                let batch = store.lease_due(c.id, node, 37, now, LEASE).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                got.extend(batch.into_iter().map(|l| l.id));
            }
            got
        })
    };
    let (a, b) = (leaser("node-a"), leaser("node-b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let a_set: HashSet<i64> = a.iter().copied().collect();
    let b_set: HashSet<i64> = b.iter().copied().collect();
    assert_eq!(a_set.len(), a.len(), "node a got a contact twice");
    assert!(
        a_set.is_disjoint(&b_set),
        "both nodes leased the same contact"
    );
    assert_eq!(
        a.len() + b.len(),
        summary.imported as usize,
        "every contact leased once"
    );
}

/// Ends `attempt` with `outcome` on a task of its own, to race another write.
fn spawn_finish(
    store: &Store,
    attempt: i64,
    outcome: Outcome,
    sip_code: u16,
    at: chrono::DateTime<chrono::Utc>,
) -> tokio::task::JoinHandle<()> {
    let store = store.clone();
    tokio::spawn(async move {
        let finish = Finish {
            outcome,
            sip_code: Some(sip_code),
            reason: None,
            ended_at: at,
        };
        store.finish_attempt(attempt, &finish).await.unwrap();
    })
}

/// An agent's disposition and the end of the call are written at about the same time, by two
/// tasks: whichever commits first, a promised callback is what the contact is left with (on
/// PostgreSQL the end's update once overwrote a callback committed after it read the contact).
async fn a_disposition_racing_the_calls_end_is_never_lost(store: Store) {
    let c = campaign(&store, "dispose-race", ALWAYS_OPEN).await;
    import_sample(&store, c.id, 120, 11).await;
    let now = chrono::Utc::now() + chrono::Duration::seconds(5);
    let leased = store.lease_due(c.id, "n", 120, now, LEASE).await.unwrap();
    assert!(leased.len() >= 100, "{} leased", leased.len());
    let mut attempts = Vec::new();
    for l in &leased {
        attempts.push(store.start_attempt(l.id, "n", now).await.unwrap());
    }
    let later = now + chrono::Duration::days(1);
    let mut tasks = Vec::new();
    for &a in &attempts {
        tasks.push(spawn_finish(&store, a, Outcome::Connected, 200, now));
        let s2 = store.clone();
        tasks.push(tokio::spawn(async move {
            s2.set_disposition(
                a,
                None,
                &Disposition {
                    kind: DispositionKind::Callback,
                    note: None,
                    callback_at: Some(later),
                    callback_personal: false,
                },
            )
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut lost = Vec::new();
    for &a in &attempts {
        let stored = store.attempt(a).await.unwrap();
        let contact = store.contact(stored.contact_id).await.unwrap();
        if contact.status != ContactStatus::Callback {
            lost.push((a, contact.status));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} callbacks lost: {lost:?}",
        lost.len(),
        attempts.len()
    );
}
on_both!(a_disposition_racing_the_calls_end_is_never_lost);

/// A number put on the do-not-call list while its call ends: the contact is left `dnc`, never
/// put back to `pending` or `exhausted` by the end's update (which read the status before).
async fn a_do_not_call_entry_racing_the_calls_end_is_never_undone(store: Store) {
    let c = campaign(&store, "dnc-race", ALWAYS_OPEN).await;
    import_sample(&store, c.id, 120, 13).await;
    let now = chrono::Utc::now() + chrono::Duration::seconds(5);
    let leased = store.lease_due(c.id, "n", 120, now, LEASE).await.unwrap();
    assert!(leased.len() >= 100, "{} leased", leased.len());
    let mut tasks = Vec::new();
    let mut contacts = Vec::new();
    for l in &leased {
        let a = store.start_attempt(l.id, "n", now).await.unwrap();
        contacts.push(l.id);
        tasks.push(spawn_finish(&store, a, Outcome::NoAnswer, 408, now));
        let (s2, e164) = (store.clone(), l.e164.clone());
        tasks.push(tokio::spawn(async move {
            s2.add_dnc(DncScope::Global, &[e164], "test").await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut undone = Vec::new();
    for &id in &contacts {
        let contact = store.contact(id).await.unwrap();
        if contact.status != ContactStatus::Dnc {
            undone.push((id, contact.status));
        }
    }
    assert!(
        undone.is_empty(),
        "{} of {} do-not-call entries undone: {undone:?}",
        undone.len(),
        contacts.len()
    );
}
on_both!(a_do_not_call_entry_racing_the_calls_end_is_never_undone);

/// `data`, then the connection breaks (as an upload whose client went away).
struct BreaksOff(std::io::Cursor<Vec<u8>>);

impl std::io::Read for BreaksOff {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the client went away",
            )),
            n => Ok(n),
        }
    }
}

async fn an_upload_that_breaks_off_keeps_whole_chunks(store: Store) {
    let c = campaign(&store, "broken-off", "").await;
    let mut csv = String::from("phone\n");
    let mut cut = 0;
    for i in 0..1000 {
        csv.push_str(&format!("+1312200{i:04}\n"));
        if i == 549 {
            cut = csv.len();
        }
    }
    let options = store::ImportOptions {
        commit_rows: 100,
        ..Default::default()
    };
    let head = csv.as_bytes()[..cut].to_vec();
    let err = store
        .import_csv(c.id, BreaksOff(std::io::Cursor::new(head)), &options)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the client went away"), "{err}");
    // 550 rows arrived: five whole chunks of 100 are stored, nothing of the sixth.
    let counts = store.contact_counts(c.id).await.unwrap();
    assert_eq!(counts, [(ContactStatus::Pending, 500)]);
    // The whole file again completes the list, without duplicates.
    let again = store
        .import_csv(c.id, std::io::Cursor::new(csv.into_bytes()), &options)
        .await
        .unwrap();
    assert_eq!((again.imported, again.duplicates), (500, 500));
    let counts = store.contact_counts(c.id).await.unwrap();
    assert_eq!(counts, [(ContactStatus::Pending, 1000)]);
}
on_both!(an_upload_that_breaks_off_keeps_whole_chunks);
