//! Serde for dense tables indexed by job number (`#[serde(with = "super::sparse")]`): only the
//! slots in use are written, with their index, after the table's length. Finished jobs leave
//! empty slots behind (numbers are never reused), so a table written whole grew with history.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A slot that may hold nothing.
pub trait Slot: Default {
    fn is_vacant(&self) -> bool;
}

impl<T> Slot for Option<T> {
    fn is_vacant(&self) -> bool {
        self.is_none()
    }
}

impl<T> Slot for Vec<T> {
    fn is_vacant(&self) -> bool {
        self.is_empty()
    }
}

impl<T> Slot for Box<[T]> {
    fn is_vacant(&self) -> bool {
        self.is_empty()
    }
}

pub fn serialize<S: Serializer, T: Serialize + Slot>(table: &[T], serializer: S) -> Result<S::Ok, S::Error> {
    let used: Vec<(u32, &T)> =
        table.iter().enumerate().filter(|(_, t)| !t.is_vacant()).map(|(i, t)| (i as u32, t)).collect();
    (table.len() as u32, used).serialize(serializer)
}

pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Slot,
{
    let (len, used): (u32, Vec<(u32, T)>) = Deserialize::deserialize(deserializer)?;
    let mut table = Vec::with_capacity(len as usize);
    table.resize_with(len as usize, T::default);
    for (i, t) in used {
        let slot =
            table.get_mut(i as usize).ok_or_else(|| serde::de::Error::custom("slot past the table"))?;
        *slot = t;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Table(#[serde(with = "super")] Vec<Option<u8>>);

    #[test]
    fn writes_the_used_slots_only_and_reads_the_table_back() {
        let table = Table(vec![None, Some(3), None, None, Some(0), None]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&table, &mut bytes).unwrap();
        assert_eq!(ciborium::from_reader::<Table, _>(bytes.as_slice()).unwrap(), table);
        let mut whole = Vec::new();
        ciborium::into_writer(&vec![None::<u8>; 1000], &mut whole).unwrap();
        let mut sparse = Vec::new();
        ciborium::into_writer(&Table(vec![None; 1000]), &mut sparse).unwrap();
        assert!(sparse.len() < 10 && whole.len() > 1000, "{} vs {}", sparse.len(), whole.len());
    }
}
