//! The user store: accounts with a normalised unique username, an argon2id
//! password hash, a role, a display name and the recent password hashes.
//! In memory, or in Redis when `PALISADE_REDIS_URL` is set.
//!
//! Redis keys follow CONTRIBUTING's rules: `<prefix>:{<16 hex>}<suffix>`,
//! the hash tag a hash of the user id (or, for the username index, of the
//! normalised username), so no user text reaches a key. Accounts are
//! durable data, not security state, so they have no TTL (the one exception
//! to "every key has a TTL").

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use palisade_errors::redis::RedisConnection;
use palisade_errors::{Error, ErrorKind, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The default key prefix of the Redis user store.
pub const DEFAULT_USER_KEY_PREFIX: &str = "palisade:users";
/// The most accounts the memory store holds.
pub const DEFAULT_MAX_USERS: usize = 100_000;
/// How many previous password hashes are kept (the policy's history).
pub const PASSWORD_HISTORY: usize = 5;
/// The bound on every Redis call of the user store.
pub const DEFAULT_USER_STORE_TIMEOUT: Duration = Duration::from_millis(250);

/// A role of this service, from the least to the most privileged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A registered user.
    User,
    /// A moderator.
    Moderator,
    /// An administrator.
    Admin,
}

impl Role {
    /// The role's name, as in tokens and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name (exact, lowercase).
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "user" => Some(Role::User),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The permissions (and API-key scopes) the role holds.
    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Role::User => &["reports:read"],
            Role::Moderator => &["reports:read", "users:read"],
            Role::Admin => &["reports:read", "users:read", "users:write"],
        }
    }
}

/// An id no account has (user ids are lowercase hex): what an unknown
/// name's lookup reads, to take as long as a known one's.
const DECOY_USER_ID: &str = "decoy";

/// One account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// 32 lowercase hex characters (128 random bits).
    pub id: String,
    /// The normalised username ([`normalize_username`]).
    pub username: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// The role.
    pub role: Role,
    /// The display name, if set.
    pub display_name: Option<String>,
    /// The previous password hashes, newest first, at most
    /// [`PASSWORD_HISTORY`].
    pub password_history: Vec<String>,
}

impl User {
    /// A new account with a fresh random id.
    ///
    /// # Errors
    ///
    /// 503 when the system's random source fails.
    pub fn new(username: String, password_hash: String, role: Role) -> Result<User, Error> {
        Ok(User {
            id: random_hex::<16>()?,
            username,
            password_hash,
            role,
            display_name: None,
            password_history: Vec::new(),
        })
    }

    /// Replaces the password hash, pushing the old one into the history.
    pub fn change_password(&mut self, new_hash: String) {
        let old = std::mem::replace(&mut self.password_hash, new_hash);
        self.password_history.insert(0, old);
        self.password_history.truncate(PASSWORD_HISTORY);
    }
}

/// Whether `id` has the shape of a user id (so a malformed one is a 404
/// before any lookup).
pub fn is_user_id(id: &str) -> bool {
    is_lower_hex(id, 32)
}

/// Whether `text` is `len` lowercase hex characters (the shape of what
/// [`random_hex`] makes).
pub(crate) fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `N` random bytes from the system's source, in lowercase hex.
///
/// # Errors
///
/// 503 when the system's random source fails.
pub(crate) fn random_hex<const N: usize>() -> Result<String, Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| Error::new(ErrorKind::Unavailable))?;
    Ok(hex(&bytes))
}

/// The canonical form of a username: trimmed, ASCII-lowercased, 3–32
/// characters of `a-z 0-9 . _ -` starting with a letter or digit. Anything
/// else (non-ASCII included: no homograph twins of an account) is `None`.
pub fn normalize_username(raw: &str) -> Option<String> {
    let name = raw.trim().to_ascii_lowercase();
    let ok_len = (3..=32).contains(&name.len());
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    let ok_first = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (ok_len && ok_chars && ok_first).then_some(name)
}

/// How many times [`UserStore::modify`] re-reads an account another
/// write changed under it before it answers 409.
pub const MODIFY_ATTEMPTS: usize = 3;

/// Compare-and-set of one account record: written only if it is still the
/// record read (1), else nothing (0).
const SWAP: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
";
/// [`SWAP`], its SHA-1 computed once.
static SWAP_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(SWAP));

/// Why a write was refused.
#[derive(Debug)]
pub enum UserStoreError {
    /// The username is taken (409).
    Conflict,
    /// No such user (404).
    NotFound,
    /// The memory store is full (503).
    Full,
    /// The store did not answer (503).
    Store(StoreError),
}

impl std::fmt::Display for UserStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserStoreError::Conflict => f.write_str("username taken"),
            UserStoreError::NotFound => f.write_str("no such user"),
            UserStoreError::Full => f.write_str("user store full"),
            UserStoreError::Store(error) => write!(f, "user store: {error}"),
        }
    }
}

impl std::error::Error for UserStoreError {}

impl From<StoreError> for UserStoreError {
    fn from(error: StoreError) -> UserStoreError {
        UserStoreError::Store(error)
    }
}

impl From<UserStoreError> for Error {
    fn from(error: UserStoreError) -> Error {
        match error {
            UserStoreError::Conflict => {
                Error::new(ErrorKind::Conflict).with_detail("username", "taken")
            }
            UserStoreError::NotFound => Error::new(ErrorKind::NotFound),
            UserStoreError::Full => Error::new(ErrorKind::Unavailable).with_source(error),
            UserStoreError::Store(store) => Error::new(ErrorKind::Unavailable).with_source(store),
        }
    }
}

#[derive(Default)]
struct Accounts {
    by_id: HashMap<String, User>,
    by_name: HashMap<String, String>,
}

/// Where accounts live.
#[derive(Clone)]
pub enum UserStore {
    /// One process's memory, bounded by [`DEFAULT_MAX_USERS`].
    Memory(Arc<Mutex<MemoryUsers>>),
    /// Redis, shared by every instance.
    Redis(RedisUsers),
}

/// The memory backend's state.
pub struct MemoryUsers {
    accounts: Accounts,
    max: usize,
}

/// The Redis backend.
#[derive(Clone)]
pub struct RedisUsers {
    connection: RedisConnection,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for UserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserStore::Memory(_) => f.write_str("UserStore::Memory"),
            UserStore::Redis(redis) => write!(f, "UserStore::Redis({})", redis.prefix),
        }
    }
}

impl UserStore {
    /// An empty memory store.
    pub fn memory() -> UserStore {
        UserStore::memory_with_max(DEFAULT_MAX_USERS)
    }

    /// An empty memory store holding at most `max` accounts.
    pub fn memory_with_max(max: usize) -> UserStore {
        UserStore::Memory(Arc::new(Mutex::new(MemoryUsers {
            accounts: Accounts::default(),
            max,
        })))
    }

    /// A Redis store over the process's connection, keys under `prefix`.
    ///
    /// # Errors
    ///
    /// A prefix that breaks the shared key-prefix rule.
    pub fn redis(connection: RedisConnection, prefix: &str) -> Result<UserStore, String> {
        palisade_errors::check_key_prefix(prefix)
            .map_err(|problem| format!("user store key prefix {problem}"))?;
        Ok(UserStore::Redis(RedisUsers {
            connection,
            prefix: prefix.to_owned(),
            timeout: DEFAULT_USER_STORE_TIMEOUT,
        }))
    }

    /// The same store with every Redis call bounded by `timeout` (default
    /// [`DEFAULT_USER_STORE_TIMEOUT`]); a memory store is unchanged.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> UserStore {
        match self {
            UserStore::Redis(redis) => UserStore::Redis(RedisUsers { timeout, ..redis }),
            memory @ UserStore::Memory(_) => memory,
        }
    }

    /// Adds `user`; a taken username is [`UserStoreError::Conflict`].
    ///
    /// # Errors
    ///
    /// Conflict, full, or the store's error.
    pub async fn create(&self, user: &User) -> Result<(), UserStoreError> {
        match self {
            UserStore::Memory(memory) => {
                let mut memory = memory.lock().unwrap_or_else(PoisonError::into_inner);
                if memory.accounts.by_name.contains_key(&user.username) {
                    return Err(UserStoreError::Conflict);
                }
                if memory.accounts.by_id.len() >= memory.max {
                    return Err(UserStoreError::Full);
                }
                memory
                    .accounts
                    .by_name
                    .insert(user.username.clone(), user.id.clone());
                memory.accounts.by_id.insert(user.id.clone(), user.clone());
                Ok(())
            }
            UserStore::Redis(redis) => redis.create(user).await,
        }
    }

    /// The account with id `id`.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        match self {
            UserStore::Memory(memory) => Ok(memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .accounts
                .by_id
                .get(id)
                .cloned()),
            UserStore::Redis(redis) => redis.get_user(id).await,
        }
    }

    /// The account named `username` (already normalised).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn by_username(&self, username: &str) -> Result<Option<User>, UserStoreError> {
        match self {
            UserStore::Memory(memory) => {
                let memory = memory.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(memory
                    .accounts
                    .by_name
                    .get(username)
                    .and_then(|id| memory.accounts.by_id.get(id))
                    .cloned())
            }
            UserStore::Redis(redis) => match redis.id_of(username).await? {
                Some(id) => redis.get_user(&id).await,
                None => {
                    // The same second round trip as a known name's (a read
                    // of an id no account has), so the time of a login,
                    // throttled or not, does not tell which names exist.
                    redis.get_user(DECOY_USER_ID).await?;
                    Ok(None)
                }
            },
        }
    }

    /// Stores `user` (an existing account; its username does not change).
    ///
    /// # Errors
    ///
    /// Not found, or the store's error.
    pub async fn update(&self, user: &User) -> Result<(), UserStoreError> {
        match self {
            UserStore::Memory(memory) => {
                let mut memory = memory.lock().unwrap_or_else(PoisonError::into_inner);
                match memory.accounts.by_id.get_mut(&user.id) {
                    Some(stored) => {
                        *stored = user.clone();
                        Ok(())
                    }
                    None => Err(UserStoreError::NotFound),
                }
            }
            UserStore::Redis(redis) => redis.put_user(user, true).await,
        }
    }

    /// Applies `change` to the stored account `id` and stores the result,
    /// as one step against every other `modify`: the account is changed as
    /// it is at the moment of the write, never as an earlier read saw it.
    /// (A handler that read the account, hashed for 300 ms and wrote its
    /// copy back would undo a role change made meanwhile: a demoted admin
    /// would stay an admin.) Memory applies it under the store's lock;
    /// Redis writes only if the record is still the one read
    /// (compare-and-set) and re-reads and re-applies up to
    /// [`MODIFY_ATTEMPTS`] times. `change` may refuse (its error is
    /// returned, nothing is written).
    ///
    /// # Errors
    ///
    /// `change`'s error; 404 for no such account; 409 when the account
    /// kept changing under every attempt; 503 for the store.
    pub async fn modify(
        &self,
        id: &str,
        mut change: impl FnMut(&mut User) -> Result<(), Error>,
    ) -> Result<User, Error> {
        match self {
            UserStore::Memory(memory) => {
                let mut memory = memory.lock().unwrap_or_else(PoisonError::into_inner);
                let stored = memory
                    .accounts
                    .by_id
                    .get_mut(id)
                    .ok_or_else(|| Error::new(ErrorKind::NotFound))?;
                let mut changed = stored.clone();
                change(&mut changed)?;
                changed.username.clone_from(&stored.username);
                changed.id.clone_from(&stored.id);
                *stored = changed.clone();
                Ok(changed)
            }
            UserStore::Redis(redis) => {
                for _ in 0..MODIFY_ATTEMPTS {
                    let (raw, mut user) = redis
                        .get_raw(id)
                        .await
                        .map_err(Error::from)?
                        .ok_or_else(|| Error::new(ErrorKind::NotFound))?;
                    let (username, user_id) = (user.username.clone(), user.id.clone());
                    change(&mut user)?;
                    user.username = username;
                    user.id = user_id;
                    if redis.swap(&raw, &user).await.map_err(Error::from)? {
                        return Ok(user);
                    }
                }
                Err(Error::new(ErrorKind::Conflict))
            }
        }
    }

    /// Every account, ordered by username.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list(&self) -> Result<Vec<User>, UserStoreError> {
        let mut users = match self {
            UserStore::Memory(memory) => memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .accounts
                .by_id
                .values()
                .cloned()
                .collect(),
            UserStore::Redis(redis) => redis.list().await?,
        };
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    /// Whether the store answers (readiness).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            UserStore::Memory(_) => Ok(()),
            UserStore::Redis(redis) => {
                let mut connection = redis.connection.clone();
                let reply: String = redis
                    .call("ping", redis::cmd("PING").query_async(&mut connection))
                    .await?;
                if reply == "PONG" {
                    Ok(())
                } else {
                    Err(StoreError::unexpected_reply("redis").during("ping"))
                }
            }
        }
    }
}

impl RedisUsers {
    fn tag(text: &str) -> String {
        let digest = Sha256::new()
            .chain_update(b"palisade-server-user:")
            .chain_update(text.as_bytes())
            .finalize();
        hex(&digest[..8])
    }

    /// `<prefix>:{<hash of id>}u`: the account record.
    fn user_key(&self, id: &str) -> String {
        format!("{}:{{{}}}u", self.prefix, RedisUsers::tag(id))
    }

    /// `<prefix>:{<hash of username>}n`: the username index (holds the id).
    fn name_key(&self, username: &str) -> String {
        format!(
            "{}:{{{}}}n",
            self.prefix,
            RedisUsers::tag(&format!("name:{username}"))
        )
    }

    /// `<prefix>:{all}ids`: the set of ids (random hex, never user text).
    fn ids_key(&self) -> String {
        format!("{}:{{all}}ids", self.prefix)
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        palisade_errors::redis::bounded(self.timeout, operation, future).await
    }

    async fn create(&self, user: &User) -> Result<(), UserStoreError> {
        let mut connection = self.connection.clone();
        // Claim the name first (SET NX): two registrations racing for one
        // name cannot both win.
        let claimed: Option<String> = self
            .call(
                "user create",
                redis::cmd("SET")
                    .arg(self.name_key(&user.username))
                    .arg(&user.id)
                    .arg("NX")
                    .query_async(&mut connection),
            )
            .await?;
        if claimed.is_none() {
            return Err(UserStoreError::Conflict);
        }
        self.put_user(user, false).await?;
        let _: i64 = self
            .call(
                "user create",
                redis::cmd("SADD")
                    .arg(self.ids_key())
                    .arg(&user.id)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(())
    }

    async fn put_user(&self, user: &User, existing: bool) -> Result<(), UserStoreError> {
        let mut connection = self.connection.clone();
        let record = serde_json::to_string(user)
            .map_err(|error| StoreError::unexpected_reply("user record").with_source(error))?;
        let mut command = redis::cmd("SET");
        command.arg(self.user_key(&user.id)).arg(record);
        if existing {
            command.arg("XX");
        }
        let written: Option<String> = self
            .call("user write", command.query_async(&mut connection))
            .await?;
        if written.is_none() {
            return Err(UserStoreError::NotFound);
        }
        Ok(())
    }

    async fn id_of(&self, username: &str) -> Result<Option<String>, UserStoreError> {
        let mut connection = self.connection.clone();
        Ok(self
            .call(
                "user lookup",
                redis::cmd("GET")
                    .arg(self.name_key(username))
                    .query_async(&mut connection),
            )
            .await?)
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        Ok(self.get_raw(id).await?.map(|(_, user)| user))
    }

    /// The record of `id` as stored, and parsed.
    async fn get_raw(&self, id: &str) -> Result<Option<(String, User)>, UserStoreError> {
        let mut connection = self.connection.clone();
        let record: Option<String> = self
            .call(
                "user read",
                redis::cmd("GET")
                    .arg(self.user_key(id))
                    .query_async(&mut connection),
            )
            .await?;
        record
            .map(|record| {
                let user = serde_json::from_str(&record).map_err(|error| {
                    UserStoreError::Store(
                        StoreError::unexpected_reply("user record")
                            .with_source(error)
                            .during("user read"),
                    )
                })?;
                Ok((record, user))
            })
            .transpose()
    }

    /// Writes `user` over its record if the record is still `read`
    /// (byte for byte); whether it did.
    async fn swap(&self, read: &str, user: &User) -> Result<bool, UserStoreError> {
        let mut connection = self.connection.clone();
        let record = serde_json::to_string(user)
            .map_err(|error| StoreError::unexpected_reply("user record").with_source(error))?;
        let swapped: i64 = self
            .call(
                "user write",
                SWAP_SCRIPT
                    .key(self.user_key(&user.id))
                    .arg(read)
                    .arg(record)
                    .invoke_async(&mut connection),
            )
            .await?;
        Ok(swapped == 1)
    }

    async fn list(&self) -> Result<Vec<User>, UserStoreError> {
        let mut connection = self.connection.clone();
        let ids: Vec<String> = self
            .call(
                "user list",
                redis::cmd("SMEMBERS")
                    .arg(self.ids_key())
                    .query_async(&mut connection),
            )
            .await?;
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(user) = self.get_user(&id).await? {
                users.push(user);
            }
        }
        Ok(users)
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn usernames_are_normalised_and_lookalikes_refused() {
        assert_eq!(
            normalize_username("  Alice.B_1 ").as_deref(),
            Some("alice.b_1")
        );
        // Attack: a homograph twin of an existing account (Cyrillic а).
        assert_eq!(normalize_username("\u{430}lice"), None);
        for bad in ["ab", "-alice", "al ice", "alice\u{0}", &"a".repeat(33), ""] {
            assert_eq!(normalize_username(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn user_ids_have_one_shape() {
        let user = User::new("alice".into(), "h".into(), Role::User).unwrap();
        assert!(is_user_id(&user.id));
        assert!(!is_user_id(&user.id.to_uppercase()));
        assert!(!is_user_id("../etc/passwd"));
    }

    #[test]
    fn history_keeps_the_newest_hashes() {
        let mut user = User::new("alice".into(), "h0".into(), Role::User).unwrap();
        for n in 1..=7 {
            user.change_password(format!("h{n}"));
        }
        assert_eq!(user.password_hash, "h7");
        assert_eq!(user.password_history, ["h6", "h5", "h4", "h3", "h2"]);
    }

    #[tokio::test]
    async fn memory_store_refuses_a_taken_username() {
        // Attack: registering over an existing account.
        let store = UserStore::memory();
        let alice = User::new("alice".into(), "h".into(), Role::User).unwrap();
        store.create(&alice).await.unwrap();
        let twin = User::new("alice".into(), "h2".into(), Role::Admin).unwrap();
        assert!(matches!(
            store.create(&twin).await,
            Err(UserStoreError::Conflict)
        ));
        assert_eq!(
            store.by_username("alice").await.unwrap().unwrap().id,
            alice.id
        );
        assert_eq!(store.list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn memory_store_is_bounded() {
        let store = UserStore::memory_with_max(1);
        store
            .create(&User::new("alice".into(), "h".into(), Role::User).unwrap())
            .await
            .unwrap();
        let bob = User::new("bob".into(), "h".into(), Role::User).unwrap();
        assert!(matches!(
            store.create(&bob).await,
            Err(UserStoreError::Full)
        ));
    }
}
