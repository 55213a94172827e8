//! In-process tests of the DIMSE adapter: the real SCP on a loopback port, the real use cases
//! and SQLite in a temporary directory (`huren-testkit`), and an SCU written here on dicom-ul
//! (PS3.8 associations, PS3.7 command sets). DCMTK and pynetdicom test the same service end to
//! end (tests/e2e).

use dicom_ul::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use huren_access::{Principal, grant_admin};
use huren_archive::peers_file::AeFields;
use huren_dicom::synth::{self, SynthImage, SynthPatient};
use huren_dimse::command::{Command, NO_DATA_SET, field, tag};
use huren_dimse::{ScpConfig, serve};
use huren_types::AeTitle;
use std::time::Duration;
use tokio::net::TcpListener;

const VERIFICATION: &str = "1.2.840.10008.1.1";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

async fn scp() -> (huren_testkit::Harness, std::net::SocketAddr) {
    let h = huren_testkit::harness().await;
    let grant = grant_admin(&Principal::Console).expect("console");
    let ae = AeFields {
        institution: "h500002".into(),
        ae_title: "COUNTY".into(),
        host: "127.0.0.1".into(),
        ..AeFields::default()
    }
    .check()
    .expect("peer");
    h.archive.add_ae(&grant, ae).await.expect("registered");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(serve(
        listener,
        h.archive.clone(),
        ScpConfig {
            ae_title: AeTitle::parse("HUREN").expect("title"),
            max_pdu_length: 65_536,
            idle_timeout: Duration::from_secs(30),
            max_associations: 4,
            tls: None,
        },
    ));
    (h, addr)
}

fn ct() -> (Vec<u8>, String) {
    let patient = SynthPatient {
        id: "DIMSE-1".into(),
        issuer: None,
        other_id: None,
        name: "Wang^Wu=王^五".into(),
        birth_date: "19750505".into(),
        sex: "F".into(),
    };
    let study = synth::uid(&[7]);
    let bytes = synth::image(&SynthImage {
        patient: &patient,
        modality: "CT",
        study_uid: &study,
        series_uid: &synth::uid(&[7, 1]),
        sop_uid: &synth::uid(&[7, 1, 1]),
        study_date: "20261201",
        study_time: "100000",
        accession: "D1",
        institution_name: "县人民医院",
        study_description: "头颅CT",
        series_number: 1,
        instance_number: 1,
        rows: 8,
        columns: 8,
        slice_position: 0.0,
    });
    (bytes, study)
}

fn pdv(pc: u8, kind: PDataValueType, data: Vec<u8>) -> Pdu {
    Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc,
            value_type: kind,
            is_last: true,
            data,
        }],
    }
}

/// The status of the one response that comes back.
async fn status(
    assoc: &mut dicom_ul::association::AsyncClientAssociation<tokio::net::TcpStream>,
) -> u16 {
    let pdu = tokio::time::timeout(Duration::from_secs(10), assoc.receive())
        .await
        .expect("a response in time")
        .expect("a PDU");
    let Pdu::PData { data } = pdu else {
        panic!("not P-DATA: {pdu:?}");
    };
    let cmd = Command::decode(&data[0].data).expect("command");
    cmd.u16(tag::STATUS).expect("status")
}

#[tokio::test]
async fn echo_store_and_an_unknown_peer() {
    let (h, addr) = scp().await;

    // C-ECHO (PS3.7 §9.3.5).
    let mut assoc = ClientAssociationOptions::new()
        .calling_ae_title("COUNTY")
        .called_ae_title("HUREN")
        .with_abstract_syntax(VERIFICATION)
        .establish_async(addr)
        .await
        .expect("associated");
    let pc = assoc.presentation_contexts()[0].id;
    let mut echo = Command::default();
    echo.set_u16(tag::COMMAND_FIELD, field::C_ECHO_RQ)
        .set_u16(tag::MESSAGE_ID, 1)
        .set_u16(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
        .set_string(tag::AFFECTED_SOP_CLASS_UID, VERIFICATION, true);
    assoc
        .send(&pdv(pc, PDataValueType::Command, echo.encode()))
        .await
        .expect("sent");
    assert_eq!(status(&mut assoc).await, 0x0000);
    let _ = assoc.release().await;

    // C-STORE (PS3.7 §9.3.1) of a synthetic CT: stored, then found over QIDO-RS.
    let (object, study) = ct();
    let mut assoc = ClientAssociationOptions::new()
        .calling_ae_title("COUNTY")
        .called_ae_title("HUREN")
        .with_presentation_context(synth::CT_IMAGE_STORAGE, vec![EXPLICIT_VR_LE])
        .establish_async(addr)
        .await
        .expect("associated");
    let pc = assoc.presentation_contexts()[0].id;
    let mut src = huren_dicom::parse::SeekSource::new(std::io::Cursor::new(object.clone()), 0)
        .expect("source");
    let meta = huren_dicom::parse::read_file_meta(&mut src).expect("file meta");
    let data_set = object[meta.dataset_offset as usize..].to_vec();
    let mut store = Command::default();
    store
        .set_u16(tag::COMMAND_FIELD, field::C_STORE_RQ)
        .set_u16(tag::MESSAGE_ID, 7)
        .set_u16(tag::PRIORITY, 0)
        .set_u16(tag::COMMAND_DATA_SET_TYPE, 0x0000)
        .set_string(tag::AFFECTED_SOP_CLASS_UID, synth::CT_IMAGE_STORAGE, true)
        .set_string(
            tag::AFFECTED_SOP_INSTANCE_UID,
            &synth::uid(&[7, 1, 1]),
            true,
        );
    assoc
        .send(&pdv(pc, PDataValueType::Command, store.encode()))
        .await
        .expect("sent");
    assoc
        .send(&pdv(pc, PDataValueType::Data, data_set))
        .await
        .expect("sent");
    assert_eq!(status(&mut assoc).await, 0x0000);
    let _ = assoc.release().await;
    let r = h
        .get(
            &format!("/dicom-web/studies?StudyInstanceUID={study}"),
            Some(&h.system),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().map_or(0, Vec::len), 1);

    // A calling AE nobody registered is rejected at association (PS3.8 §9.3.4).
    let refused = ClientAssociationOptions::new()
        .calling_ae_title("STRANGER")
        .called_ae_title("HUREN")
        .with_abstract_syntax(VERIFICATION)
        .establish_async(addr)
        .await;
    assert!(refused.is_err(), "an unknown peer was accepted");
}
