//! File Meta Information (PS3.10 §7.1) for objects received over DIMSE, which arrive as bare
//! datasets. The dataset bytes that follow are stored exactly as received.

/// huren's Implementation Class UID: a UUID-derived UID under 2.25 (PS3.5 §B.2), fixed forever.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.327082363167925278541007026679203501182";
pub const IMPLEMENTATION_VERSION_NAME: &str = "HUREN_0_1";

fn push_element(out: &mut Vec<u8>, element: u16, vr: &[u8; 2], value: &[u8], pad: u8) {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(pad);
    }
    out.extend_from_slice(&0x0002u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(vr);
    if vr == b"OB" {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&v);
}

/// Preamble, `DICM` and the meta group, ready to be followed by the dataset.
pub fn file_meta(
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax_uid: &str,
    source_ae_title: Option<&str>,
) -> Vec<u8> {
    let mut group = Vec::with_capacity(256);
    push_element(&mut group, 0x0001, b"OB", &[0, 1], 0);
    push_element(&mut group, 0x0002, b"UI", sop_class_uid.as_bytes(), 0);
    push_element(&mut group, 0x0003, b"UI", sop_instance_uid.as_bytes(), 0);
    push_element(&mut group, 0x0010, b"UI", transfer_syntax_uid.as_bytes(), 0);
    push_element(
        &mut group,
        0x0012,
        b"UI",
        IMPLEMENTATION_CLASS_UID.as_bytes(),
        0,
    );
    push_element(
        &mut group,
        0x0013,
        b"SH",
        IMPLEMENTATION_VERSION_NAME.as_bytes(),
        b' ',
    );
    if let Some(ae) = source_ae_title {
        push_element(&mut group, 0x0016, b"AE", ae.as_bytes(), b' ');
    }
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    out.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
    out.extend_from_slice(&(group.len() as u32).to_le_bytes());
    out.extend_from_slice(&group);
    out
}
