//! An association as a channel of PDUs, whichever end huren is (PS3.8): the SCP's own for
//! C-FIND/C-GET responses, the SCU's for C-MOVE sub-operations; and one command set sent as one
//! P-DATA-TF PDU.

use crate::command::Command;
use dicom_ul::association::{AsyncClientAssociation, AsyncServerAssociation};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextResultReason};

/// Both ends of an association speak PDUs the same way; sub-operations use either.
pub trait Channel {
    fn send_pdu(
        &mut self,
        pdu: &Pdu,
    ) -> impl std::future::Future<Output = Result<(), dicom_ul::association::Error>> + Send;
    fn receive_pdu(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Pdu, dicom_ul::association::Error>> + Send;
    /// Largest PDV payload the peer accepts.
    fn max_pdv(&self) -> usize;
    /// Accepted contexts: (id, abstract syntax, transfer syntax).
    fn accepted(&self) -> Vec<(u8, String, String)>;
}

fn accepted_of(pcs: &[dicom_ul::pdu::PresentationContextNegotiated]) -> Vec<(u8, String, String)> {
    pcs.iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| {
            (
                pc.id,
                pc.abstract_syntax.clone(),
                pc.transfer_syntax.clone(),
            )
        })
        .collect()
}

fn pdv_limit(peer_max: u32) -> usize {
    // A PDV item costs 6 bytes inside the P-DATA-TF; 0 means "no limit" (PS3.8 D.1).
    (if peer_max == 0 {
        1 << 20
    } else {
        peer_max.clamp(1024, 1 << 20)
    }) as usize
        - 6
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Channel
    for AsyncServerAssociation<S>
{
    async fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), dicom_ul::association::Error> {
        self.send(pdu).await
    }
    async fn receive_pdu(&mut self) -> Result<Pdu, dicom_ul::association::Error> {
        self.receive().await
    }
    fn max_pdv(&self) -> usize {
        pdv_limit(self.requestor_max_pdu_length())
    }
    fn accepted(&self) -> Vec<(u8, String, String)> {
        accepted_of(self.presentation_contexts())
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Channel
    for AsyncClientAssociation<S>
{
    async fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), dicom_ul::association::Error> {
        self.send(pdu).await
    }
    async fn receive_pdu(&mut self) -> Result<Pdu, dicom_ul::association::Error> {
        self.receive().await
    }
    fn max_pdv(&self) -> usize {
        pdv_limit(self.acceptor_max_pdu_length())
    }
    fn accepted(&self) -> Vec<(u8, String, String)> {
        accepted_of(self.presentation_contexts())
    }
}

/// Sends one command set as a single P-DATA-TF PDU (command sets are small).
pub async fn send_command<C: Channel>(
    ch: &mut C,
    pc_id: u8,
    cmd: &Command,
) -> Result<(), dicom_ul::association::Error> {
    let pdu = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc_id,
            value_type: PDataValueType::Command,
            is_last: true,
            data: cmd.encode(),
        }],
    };
    ch.send_pdu(&pdu).await
}
