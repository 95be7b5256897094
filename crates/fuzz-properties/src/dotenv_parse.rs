//! Arbitrary `.env` text through the parser: never a panic, an accepted file
//! writes back (every value quoted) and reads the same, and any text quoted
//! as a value reads back unchanged.

use palisade_secrets::{EnvSource, dotenv};

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(env) = dotenv::parse(&text) {
        let mut written = String::new();
        for name in env.names() {
            let value = env.var(name).expect("a listed name has a value");
            written.push_str(&format!("{name}={}\n", dotenv::quote(&value)));
        }
        let again = dotenv::parse(&written).expect("a written file parses");
        assert_eq!(
            again.names().collect::<Vec<_>>(),
            env.names().collect::<Vec<_>>()
        );
        for name in env.names() {
            assert_eq!(again.var(name), env.var(name), "{name} changed");
        }
    }
    let quoted = format!("K={}", dotenv::quote(&text));
    let env = dotenv::parse(&quoted).expect("a quoted value parses");
    assert_eq!(env.var("K").as_deref(), Some(&*text));
}
