//! The fake driver behaves like a hypervisor: idempotent spawn and destroy,
//! power state transitions, console output, failure injection, and guests
//! that survive a restart through the state file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use stratus_virt::fake::{FakeDriver, FakeOptions};
use stratus_virt::{Driver, GuestSpec, PowerState};

fn spec(uuid: &str) -> GuestSpec {
    GuestSpec {
        uuid: uuid.into(),
        name: format!("vm-{uuid}"),
        hostname: "vm".into(),
        vcpus: 2,
        memory_mb: 512,
        root_gb: 1,
        ..Default::default()
    }
}

fn opts() -> FakeOptions {
    FakeOptions { vcpus: 8, memory_mb: 8192, disk_gb: 100, ..Default::default() }
}

#[tokio::test]
async fn lifecycle_and_power_states() {
    let d = FakeDriver::new(opts()).unwrap();
    d.spawn(&spec("a")).await.unwrap();
    d.spawn(&spec("a")).await.unwrap(); // idempotent
    assert_eq!(d.list().await.unwrap().len(), 1);
    let state = || async { d.list().await.unwrap()[0].power_state };
    assert_eq!(state().await, PowerState::Running);
    d.pause("a").await.unwrap();
    assert_eq!(state().await, PowerState::Paused);
    assert!(d.power_on("a").await.is_err(), "a paused guest cannot be powered on");
    d.unpause("a").await.unwrap();
    d.suspend("a").await.unwrap();
    assert_eq!(state().await, PowerState::Suspended);
    d.resume("a").await.unwrap();
    d.power_off("a").await.unwrap();
    assert_eq!(state().await, PowerState::Shutdown);
    assert!(d.reboot("a", false).await.is_err(), "soft reboot of a stopped guest");
    d.reboot("a", true).await.unwrap();
    assert_eq!(state().await, PowerState::Running);
    let out = d.console_output("a", Some(1)).await.unwrap();
    assert!(out.contains("Restarting system (hard)"), "{out}");
    assert_eq!(out.lines().count(), 1);
    d.destroy("a").await.unwrap();
    d.destroy("a").await.unwrap(); // idempotent
    assert!(d.list().await.unwrap().is_empty());
    assert!(d.power_on("a").await.is_err());
}

#[tokio::test]
async fn failure_injection_and_boot_delay() {
    let d = FakeDriver::new(FakeOptions {
        fail_spawn_named: Some("bad".into()),
        boot_delay: Duration::from_millis(50),
        ..opts()
    })
    .unwrap();
    let mut s = spec("b");
    s.name = "a-bad-one".into();
    let t = std::time::Instant::now();
    assert!(d.spawn(&s).await.is_err());
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(d.list().await.unwrap().is_empty(), "a failed spawn leaves nothing");
    d.set_fail_spawn(true);
    assert!(d.spawn(&spec("c")).await.is_err());
    d.set_fail_spawn(false);
    d.spawn(&spec("c")).await.unwrap();
}

#[tokio::test]
async fn guests_survive_a_restart_through_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fake/host1.json");
    let o = FakeOptions { state_file: Some(file.clone()), ..opts() };
    {
        let d = FakeDriver::new(o.clone()).unwrap();
        d.spawn(&spec("x")).await.unwrap();
        d.spawn(&spec("y")).await.unwrap();
        d.power_off("y").await.unwrap();
    }
    let d = FakeDriver::new(o).unwrap();
    let guests = d.list().await.unwrap();
    assert_eq!(guests.len(), 2);
    assert_eq!(guests.iter().find(|g| g.uuid == "y").unwrap().power_state, PowerState::Shutdown);
    let snap = dir.path().join("snap.raw");
    assert_eq!(d.snapshot("x", &snap).await.unwrap(), "raw");
    assert!(std::fs::metadata(&snap).unwrap().len() > 0);
}
