//! DIMSE command sets (PS3.7 §9.3, Annex E): group 0000 elements, always Implicit VR Little
//! Endian, whatever the presentation context's transfer syntax.

use std::collections::BTreeMap;

pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_GET_RQ: u16 = 0x0010;
    pub const C_GET_RSP: u16 = 0x8010;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
}

pub mod tag {
    pub const AFFECTED_SOP_CLASS_UID: u32 = 0x0000_0002;
    pub const COMMAND_FIELD: u32 = 0x0000_0100;
    pub const MESSAGE_ID: u32 = 0x0000_0110;
    pub const MESSAGE_ID_BEING_RESPONDED_TO: u32 = 0x0000_0120;
    pub const MOVE_DESTINATION: u32 = 0x0000_0600;
    pub const PRIORITY: u32 = 0x0000_0700;
    pub const COMMAND_DATA_SET_TYPE: u32 = 0x0000_0800;
    pub const STATUS: u32 = 0x0000_0900;
    pub const ERROR_COMMENT: u32 = 0x0000_0902;
    pub const AFFECTED_SOP_INSTANCE_UID: u32 = 0x0000_1000;
}

/// "No data set" value of (0000,0800) (PS3.7 §E.1).
pub const NO_DATA_SET: u16 = 0x0101;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command set truncated at byte {0}")]
    Truncated(usize),
    #[error("command element ({0:08X}) outside group 0000")]
    WrongGroup(u32),
    #[error("command set lacks {0}")]
    Missing(&'static str),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    elements: BTreeMap<u32, Vec<u8>>,
}

impl Command {
    pub fn decode(bytes: &[u8]) -> Result<Self, CommandError> {
        let mut elements = BTreeMap::new();
        let mut i = 0;
        while i < bytes.len() {
            let head = bytes.get(i..i + 8).ok_or(CommandError::Truncated(i))?;
            let group = u16::from_le_bytes([head[0], head[1]]);
            let elem = u16::from_le_bytes([head[2], head[3]]);
            let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
            let tag = (u32::from(group) << 16) | u32::from(elem);
            if group != 0 {
                return Err(CommandError::WrongGroup(tag));
            }
            let value = bytes
                .get(i + 8..i + 8 + len)
                .ok_or(CommandError::Truncated(i))?;
            elements.insert(tag, value.to_vec());
            i += 8 + len;
        }
        Ok(Command { elements })
    }

    pub fn u16(&self, tag: u32) -> Option<u16> {
        let v = self.elements.get(&tag)?;
        Some(u16::from_le_bytes([*v.first()?, *v.get(1)?]))
    }

    pub fn string(&self, tag: u32) -> Option<String> {
        let v = self.elements.get(&tag)?;
        Some(
            String::from_utf8_lossy(v)
                .trim_end_matches(['\0', ' '])
                .trim_start()
                .to_owned(),
        )
    }

    pub fn command_field(&self) -> Result<u16, CommandError> {
        self.u16(tag::COMMAND_FIELD)
            .ok_or(CommandError::Missing("CommandField (0000,0100)"))
    }

    pub fn message_id(&self) -> Result<u16, CommandError> {
        self.u16(tag::MESSAGE_ID)
            .ok_or(CommandError::Missing("MessageID (0000,0110)"))
    }

    pub fn has_data_set(&self) -> bool {
        self.u16(tag::COMMAND_DATA_SET_TYPE)
            .is_some_and(|t| t != NO_DATA_SET)
    }

    pub fn set_u16(&mut self, tag: u32, v: u16) -> &mut Self {
        self.elements.insert(tag, v.to_le_bytes().to_vec());
        self
    }

    /// UI values are padded with NUL, other strings with space, to even length (PS3.5 §6.2).
    pub fn set_string(&mut self, tag: u32, v: &str, uid: bool) -> &mut Self {
        let mut b = v.as_bytes().to_vec();
        if b.len() % 2 == 1 {
            b.push(if uid { 0 } else { b' ' });
        }
        self.elements.insert(tag, b);
        self
    }

    /// Encodes with a correct CommandGroupLength (0000,0000).
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(128);
        for (tag, v) in self.elements.iter().filter(|(t, _)| **t != 0) {
            body.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
            body.extend_from_slice(&(*tag as u16).to_le_bytes());
            body.extend_from_slice(&(v.len() as u32).to_le_bytes());
            body.extend_from_slice(v);
        }
        let mut out = Vec::with_capacity(body.len() + 12);
        out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }
}

/// A response to `rq` with the fields every DIMSE response carries (PS3.7 §9.3.x.2).
pub fn response(
    rsp_field: u16,
    rq_message_id: u16,
    sop_class: Option<&str>,
    sop_instance: Option<&str>,
    status: u16,
    comment: Option<&str>,
) -> Command {
    let mut c = Command::default();
    c.set_u16(tag::COMMAND_FIELD, rsp_field)
        .set_u16(tag::MESSAGE_ID_BEING_RESPONDED_TO, rq_message_id)
        .set_u16(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
        .set_u16(tag::STATUS, status);
    if let Some(s) = sop_class {
        c.set_string(tag::AFFECTED_SOP_CLASS_UID, s, true);
    }
    if let Some(s) = sop_instance {
        c.set_string(tag::AFFECTED_SOP_INSTANCE_UID, s, true);
    }
    if let Some(text) = comment {
        // ErrorComment is LO: at most 64 characters (PS3.7 §C.4.1.1.3... LO per PS3.5 §6.2).
        let t: String = text.chars().filter(|c| *c != '\\').take(64).collect();
        c.set_string(tag::ERROR_COMMENT, &t, false);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_group_length() {
        let c = response(
            field::C_STORE_RSP,
            7,
            Some("1.2.3"),
            Some("1.2.3.4"),
            0xB007,
            Some("x"),
        );
        let bytes = c.encode();
        let back = Command::decode(&bytes).unwrap();
        assert_eq!(back.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO), Some(7));
        assert_eq!(back.u16(tag::STATUS), Some(0xB007));
        assert_eq!(
            back.string(tag::AFFECTED_SOP_CLASS_UID).as_deref(),
            Some("1.2.3")
        );
        let group_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        assert_eq!(group_len, bytes.len() - 12);
        assert!(!back.has_data_set());
    }

    #[test]
    fn truncated_and_foreign_group_are_errors() {
        assert_eq!(
            Command::decode(&[0, 0, 0, 1, 4]).unwrap_err(),
            CommandError::Truncated(0)
        );
        assert!(matches!(
            Command::decode(&[8, 0, 0x18, 0, 0, 0, 0, 0]),
            Err(CommandError::WrongGroup(_))
        ));
        let long = response(1, 1, None, None, 0, Some(&"e".repeat(200))).encode();
        let back = Command::decode(&long).unwrap();
        assert_eq!(back.string(tag::ERROR_COMMENT).unwrap().len(), 64);
    }
}
