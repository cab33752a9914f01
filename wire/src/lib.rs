//! The client wire protocol of faultline nodes, defined once for both ends.
//!
//! A client sends a node one JSON object per line with the message bodies of Maelstrom's protocol
//! (`{"type":"read","msg_id":1,"key":"k"}`) and gets one back (`{"type":"read_ok","in_reply_to":1,
//! "value":3}`, or `{"type":"error","in_reply_to":1,"code":20,"text":"..."}`). The reference nodes
//! (`faultline-nodes`) decode requests and encode replies with this crate; the harness's TCP client
//! (`faultline-workloads`) and its Maelstrom client and key-value services (`faultline`) encode
//! requests and read replies with it. docs/node-contract.md describes the format for users.
//!
//! - [`code`]: Maelstrom's error codes and what each tells a client (`fail` or `info`).
//! - [`request`]: the requests a client sends, and their bodies.
//! - [`reply`]: the replies a node sends, and their bodies.
//!
//! The wire format is fixed by the node contract; the typed values here are the only place that
//! knows it. The field order of every body is fixed too (type, msg_id or in_reply_to, then the
//! fields), so what goes over the wire is byte for byte what it was before these types existed.

pub mod code;
pub mod reply;
pub mod request;

pub use code::{ErrorCode, Outcome};
pub use reply::Reply;
pub use request::{ClientMsg, Request};
