//! Policies built by `arbitrary` on the shape of the real document: every key of the default
//! policy kept, dropped or given a value of a plausible type (booleans, numbers, hex of the
//! lengths the rules use, the names they accept, lists of those), so the fuzzer spends its
//! time in the rules' validation instead of in TOML syntax. Whatever parses survives the
//! round trips.
#![no_main]

use arbitrary::Arbitrary;
use attestation_verifier::policy::Policy;
use libfuzzer_sys::fuzz_target;
use toml::{Table, Value};

const NAMES: &[&str] = &[
    "sev-snp",
    "tdx",
    "simulated",
    "VCEK",
    "VLEK",
    "Milan",
    "Genoa",
    "Turin",
    "UpToDate",
    "OutOfDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDateConfigurationNeeded",
    "Revoked",
    "on",
    "off",
    "devtools",
    "H100",
    "H200",
    "GH100",
    "550.90.07",
    "96.00.9f.00.01",
    "",
    "0x",
];

#[derive(Arbitrary, Debug)]
enum HexLen {
    B16,
    B32,
    B48,
    B64,
    Other(u8),
}

impl HexLen {
    fn len(&self) -> usize {
        match self {
            Self::B16 => 16,
            Self::B32 => 32,
            Self::B48 => 48,
            Self::B64 => 64,
            Self::Other(n) => usize::from(*n),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Item {
    Hex(HexLen, u8, bool),
    Name(u8),
    Int(i64),
    Small(u8),
}

impl Item {
    fn value(&self) -> Value {
        match self {
            Self::Hex(len, byte, prefixed) => {
                let hex: String = core::iter::repeat_n(format!("{byte:02x}"), len.len()).collect();
                Value::String(if *prefixed { format!("0x{hex}") } else { hex })
            }
            Self::Name(i) => Value::String(NAMES[usize::from(*i) % NAMES.len()].into()),
            Self::Int(i) => Value::Integer(*i),
            Self::Small(i) => Value::Integer(i64::from(*i)),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Keep,
    Drop,
    Bool(bool),
    One(Item),
    List(Vec<Item>),
}

#[derive(Arbitrary, Debug)]
struct Doc {
    edits: Vec<Edit>,
    /// A key the default document does not have (unknown keys must be refused).
    extra: Option<(u8, Item)>,
}

fuzz_target!(|doc: Doc| {
    let mut table: Table = toml::from_str(&Policy::default().to_toml()).expect("default policy");
    let mut edits = doc.edits.iter();
    let sections: Vec<String> = table.keys().cloned().collect();
    for section in sections {
        let apply = |v: &mut Value, e: &Edit| match e {
            Edit::Keep | Edit::Drop => {}
            Edit::Bool(b) => *v = Value::Boolean(*b),
            Edit::One(i) => *v = i.value(),
            Edit::List(items) => *v = Value::Array(items.iter().map(Item::value).collect()),
        };
        match table.get_mut(&section) {
            Some(Value::Table(t)) => {
                let keys: Vec<String> = t.keys().cloned().collect();
                for k in keys {
                    match edits.next() {
                        Some(Edit::Drop) => drop(t.remove(&k)),
                        Some(e) => apply(t.get_mut(&k).expect("key"), e),
                        None => {}
                    }
                }
            }
            Some(v) => match edits.next() {
                Some(Edit::Drop) => drop(table.remove(&section)),
                Some(e) => apply(v, e),
                None => {}
            },
            None => {}
        }
    }
    if let Some((i, item)) = &doc.extra {
        table.insert(format!("extra_{i}"), item.value());
    }
    let text = toml::to_string(&table).expect("a TOML table");
    if let Ok(p) = Policy::from_toml(&text) {
        attestation_verifier_fuzz::check_policy_round_trips(&p);
    }
});
