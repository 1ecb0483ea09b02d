//! The activity rule: what an action did to its resource (OCSF activity_id 1-4), derived from
//! the verb that starts the action name.
//!
//! API names (CloudTrail `eventName`) start with a capitalised verb: `StartInstances` has verb
//! `Start`. A leading `Batch` is skipped (`BatchGetItem` reads). The verb is looked up in the
//! tables below; an unknown verb gives [`Activity::Other`]. HTTP methods (access logs) use
//! [`activity_from_http_method`], which agrees with the verb tables (`PUT` is `Put`: create).

use trailvault_model::Activity;

const CREATE: &[&str] = &[
    "Accept",
    "Add",
    "Allocate",
    "Assign",
    "Associate",
    "Assume",
    "Attach",
    "Authorize",
    "Copy",
    "Create",
    "Generate",
    "Import",
    "Initiate",
    "Invoke",
    "Issue",
    "Launch",
    "Post",
    "Provision",
    "Publish",
    "Purchase",
    "Put",
    "Register",
    "Request",
    "Run",
    "Send",
    "Start",
    "Submit",
    "Subscribe",
    "Upload",
];
const READ: &[&str] = &[
    "Check", "Describe", "Detect", "Download", "Estimate", "Filter", "Get", "Head", "List",
    "Lookup", "Preview", "Query", "Read", "Retrieve", "Scan", "Search", "Select", "Simulate",
    "Test", "Validate", "Verify", "View",
];
const UPDATE: &[&str] = &[
    "Apply",
    "Change",
    "Configure",
    "Decrease",
    "Disable",
    "Edit",
    "Enable",
    "Increase",
    "Modify",
    "Move",
    "Patch",
    "Reboot",
    "Rename",
    "Replace",
    "Reset",
    "Restore",
    "Rotate",
    "Set",
    "Stop",
    "Switch",
    "Tag",
    "Untag",
    "Update",
    "Upgrade",
];
const DELETE: &[&str] = &[
    "Abort",
    "Cancel",
    "Deactivate",
    "Delete",
    "Deregister",
    "Destroy",
    "Detach",
    "Disassociate",
    "Disconnect",
    "Drop",
    "Purge",
    "Release",
    "Remove",
    "Revoke",
    "Terminate",
    "Unassign",
    "Unsubscribe",
];

/// The leading verb of a PascalCase (or camelCase) action name.
fn leading_verb(name: &str) -> &str {
    let end = name
        .char_indices()
        .skip(1)
        .find(|(_, c)| c.is_ascii_uppercase() || !c.is_ascii_alphabetic())
        .map_or(name.len(), |(i, _)| i);
    &name[..end]
}

/// Activity of an API action name such as CloudTrail's `eventName`.
pub fn activity_from_action(name: &str) -> Activity {
    let mut verb = leading_verb(name);
    if verb == "Batch" {
        verb = leading_verb(&name[verb.len()..]);
    }
    // camelCase names (some services) compare like their PascalCase form.
    let mut buf = [0u8; 16];
    let verb = if verb.len() <= buf.len() && verb.starts_with(|c: char| c.is_ascii_lowercase()) {
        buf[..verb.len()].copy_from_slice(verb.as_bytes());
        buf[0] = buf[0].to_ascii_uppercase();
        std::str::from_utf8(&buf[..verb.len()]).unwrap_or(verb)
    } else {
        verb
    };
    if CREATE.binary_search(&verb).is_ok() {
        Activity::Create
    } else if READ.binary_search(&verb).is_ok() {
        Activity::Read
    } else if UPDATE.binary_search(&verb).is_ok() {
        Activity::Update
    } else if DELETE.binary_search(&verb).is_ok() {
        Activity::Delete
    } else {
        Activity::Other
    }
}

/// Activity of an HTTP method: GET/HEAD/OPTIONS read, POST/PUT create, PATCH update,
/// DELETE delete, anything else other.
pub fn activity_from_http_method(method: &str) -> Activity {
    match method.to_ascii_uppercase().as_str() {
        "GET" | "HEAD" | "OPTIONS" => Activity::Read,
        "POST" | "PUT" => Activity::Create,
        "PATCH" => Activity::Update,
        "DELETE" => Activity::Delete,
        _ => Activity::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for t in [CREATE, READ, UPDATE, DELETE] {
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
        }
    }

    #[test]
    fn verbs() {
        assert_eq!(activity_from_action("StartInstances"), Activity::Create);
        assert_eq!(activity_from_action("CreateUser"), Activity::Create);
        assert_eq!(activity_from_action("ListBuckets"), Activity::Read);
        assert_eq!(activity_from_action("GetObject"), Activity::Read);
        assert_eq!(activity_from_action("BatchGetItem"), Activity::Read);
        assert_eq!(activity_from_action("UpdateTrail"), Activity::Update);
        assert_eq!(activity_from_action("TerminateInstances"), Activity::Delete);
        assert_eq!(activity_from_action("DetachRolePolicy"), Activity::Delete);
        assert_eq!(activity_from_action("ConsoleLogin"), Activity::Other);
        assert_eq!(activity_from_action("getObject"), Activity::Read);
        assert_eq!(activity_from_action(""), Activity::Other);
        assert_eq!(activity_from_action("Get"), Activity::Read);
        assert_eq!(activity_from_action("é"), Activity::Other);
        assert_eq!(activity_from_http_method("get"), Activity::Read);
        assert_eq!(activity_from_http_method("PUT"), Activity::Create);
        assert_eq!(activity_from_http_method("BREW"), Activity::Other);
    }
}
