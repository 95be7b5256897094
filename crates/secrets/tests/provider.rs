//! `SecretProvider`: the environment and a mounted secrets directory, with
//! versions and reload on change.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_secrets::{
    ConfigErrorKind, MapEnv, MountedDir, SecretProvider, SecretSource, Version,
};

#[test]
fn the_environment_is_a_provider_with_previous_versions() {
    let env = MapEnv::from_iter([("KEY", "current-v2"), ("KEY_PREVIOUS", "previous-v1")]);
    let source = SecretSource::new(&env);
    let provider: &dyn SecretProvider = &source;
    assert_eq!(
        provider
            .read("KEY", Version::Previous)
            .unwrap()
            .unwrap()
            .expose_secret(),
        "previous-v1"
    );
    let versions = provider.versioned("KEY").unwrap().unwrap();
    assert_eq!(versions.current().expose_secret(), "current-v2");
}

#[test]
fn a_mounted_directory_holds_one_file_per_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db_password"), "mounted-value\n").unwrap();
    let mounted = MountedDir::new(dir.path());
    let secret = mounted
        .read("db_password", Version::Current)
        .unwrap()
        .unwrap();
    assert_eq!(secret.expose_secret(), "mounted-value");
    assert!(
        mounted
            .read("db_password", Version::Previous)
            .unwrap()
            .is_none()
    );
    assert!(mounted.read("absent", Version::Current).unwrap().is_none());
}

#[test]
fn a_mounted_rotated_secret_has_current_and_previous_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("jwt_key");
    std::fs::create_dir(&key).unwrap();
    std::fs::write(key.join("current"), "key-v2").unwrap();
    std::fs::write(key.join("previous"), "key-v1").unwrap();
    let versions = MountedDir::new(dir.path())
        .versioned("jwt_key")
        .unwrap()
        .unwrap();
    assert_eq!(versions.current().expose_secret(), "key-v2");
    assert_eq!(versions.previous().unwrap().expose_secret(), "key-v1");
}

#[test]
fn a_changed_mounted_secret_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api_key");
    std::fs::write(&path, "before-rotation").unwrap();
    let mounted = MountedDir::new(dir.path());
    assert_eq!(
        mounted
            .read("api_key", Version::Current)
            .unwrap()
            .unwrap()
            .expose_secret(),
        "before-rotation"
    );
    // Kubernetes swaps the file under the mount (atomically, by rename).
    let staged = dir.path().join(".staged");
    std::fs::write(&staged, "after-rotation").unwrap();
    std::fs::rename(&staged, &path).unwrap();
    assert_eq!(
        mounted
            .read("api_key", Version::Current)
            .unwrap()
            .unwrap()
            .expose_secret(),
        "after-rotation"
    );
}

#[test]
fn a_mounted_secret_name_cannot_leave_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = MountedDir::new(dir.path().join("secrets"));
    for name in ["../x", "..", "a/b", "", "."] {
        let error = mounted.read(name, Version::Current).unwrap_err();
        assert_eq!(error.kind(), ConfigErrorKind::Invalid, "{name}");
    }
}

#[cfg(unix)]
#[test]
fn a_mounted_file_writable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    std::fs::write(&path, "v").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let error = MountedDir::new(dir.path())
        .read("k", Version::Current)
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::FilePermissions);
}
