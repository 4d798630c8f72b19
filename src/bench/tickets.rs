//! A seeded generator of support-ticket files with a known answer, for `batch_analysis` tests and
//! scoring: causes drawn from a catalogue (each with several paraphrased wordings),
//! each repeated a random number of times, every ticket one line
//! `#ID [component] problem. Seen by N users since DAY. distractor`, shuffled. The generator keeps
//! which cause each ticket came from, so a run's clusters can be scored against the truth.
//! Used by `splai bench analysis` and, with `#[path]`, by `tests/e2e/analysis.rs`; it uses nothing
//! of the crate.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// (component, wordings of one cause).
const CAUSES: [(&str, [&str; 3]); 24] = [
    (
        "login",
        [
            "Password reset email never arrives",
            "The reset link email is not delivered",
            "Never received the password reset mail",
        ],
    ),
    (
        "login",
        [
            "Two-factor code is rejected as invalid",
            "The 2FA code always says invalid",
            "Authenticator codes are refused at sign in",
        ],
    ),
    (
        "login",
        [
            "Session expires after a few minutes",
            "Users get logged out every few minutes",
            "The login session times out far too quickly",
        ],
    ),
    (
        "billing",
        [
            "Invoice PDF is blank when exported",
            "The exported invoice PDF comes out empty",
            "Downloaded invoices have blank pages",
        ],
    ),
    (
        "billing",
        [
            "Card payment declined with error 402",
            "Payment fails with code 402",
            "Credit card charge is rejected with a 402",
        ],
    ),
    (
        "billing",
        [
            "Charged twice for the same subscription",
            "The subscription was billed two times",
            "Double charge on the monthly plan",
        ],
    ),
    (
        "search",
        [
            "Search returns no results for exact titles",
            "Exact title search finds nothing",
            "Searching the exact name shows zero results",
        ],
    ),
    (
        "search",
        [
            "Search results load very slowly",
            "Search takes over ten seconds to answer",
            "The results page is extremely slow to appear",
        ],
    ),
    (
        "search",
        [
            "Filters reset after pressing back",
            "Going back clears the search filters",
            "Search filters are lost on back navigation",
        ],
    ),
    (
        "mobile",
        [
            "App crashes when opening the camera",
            "The camera screen makes the app crash",
            "Opening the camera closes the app",
        ],
    ),
    (
        "mobile",
        [
            "Push notifications arrive hours late",
            "Notifications are delayed by hours",
            "Alerts show up hours after the event",
        ],
    ),
    (
        "mobile",
        [
            "Dark mode makes text unreadable",
            "Text is invisible in dark mode",
            "The dark theme shows black text on black",
        ],
    ),
    (
        "api",
        [
            "API returns 429 errors in a row",
            "Rate limit 429 is hit constantly",
            "Too many requests error on every API call",
        ],
    ),
    ("api", ["Webhook deliveries time out", "Webhooks fail with timeouts", "Webhook calls never complete"]),
    (
        "api",
        [
            "API key stops working after rotation",
            "The rotated API key is rejected",
            "A new API key gives unauthorized",
        ],
    ),
    (
        "export",
        [
            "CSV export cuts off after 1000 rows",
            "The export stops at 1000 lines",
            "Only the first 1000 rows are exported",
        ],
    ),
    (
        "export",
        [
            "Excel export shows garbled accents",
            "Accented characters are broken in the Excel file",
            "The Excel export mangles special characters",
        ],
    ),
    (
        "export",
        [
            "Scheduled report email is empty",
            "The weekly report arrives with no data",
            "The scheduled report has nothing in it",
        ],
    ),
    (
        "dashboard",
        [
            "Charts show yesterday's data",
            "Dashboard numbers are a day behind",
            "Graphs have not updated since yesterday",
        ],
    ),
    (
        "dashboard",
        [
            "Dashboard never loads and keeps spinning",
            "The dashboard spinner runs forever",
            "The dashboard page never finishes loading",
        ],
    ),
    (
        "dashboard",
        [
            "Chart times are in the wrong timezone",
            "Charts use the wrong time zone",
            "Times on the dashboard charts are off by hours",
        ],
    ),
    (
        "upload",
        [
            "Large file upload fails at 99 percent",
            "Uploads over 100 MB stop near the end",
            "Big uploads break just before finishing",
        ],
    ),
    (
        "upload",
        [
            "Uploaded images appear rotated",
            "Photos are turned sideways after upload",
            "Image orientation is wrong after uploading",
        ],
    ),
    (
        "upload",
        [
            "Upload progress bar stays at zero",
            "The progress bar never moves during upload",
            "The upload bar is stuck at 0 percent",
        ],
    ),
];

const SINCE: [&str; 9] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "last week",
    "the update",
    "yesterday",
    "this morning",
];

const DISTRACTORS: [&str; 10] = [
    "Customer is on the Pro plan.",
    "Reported through chat.",
    "Please look at this soon.",
    "Happened again today.",
    "They tried another browser.",
    "Ticket escalated by support.",
    "",
    "",
    "",
    "",
];

/// One generated ticket and the cause it came from.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: u32,
    pub cause: usize,
    pub users: u32,
    pub line: String,
}

/// A generated file: its tickets in file order.
#[derive(Debug, Clone)]
pub struct TicketFile {
    pub tickets: Vec<Ticket>,
}

/// Per cause of the truth: (cause, tickets, users), most tickets first (then users, then cause).
pub type Truth = Vec<(usize, usize, u64)>;

impl TicketFile {
    /// `causes` distinct causes (at most 24), each `min..=max` times, from `seed`.
    pub fn generate(seed: u64, causes: usize, min: usize, max: usize) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut chosen: Vec<usize> = (0..CAUSES.len()).collect();
        chosen.shuffle(&mut rng);
        chosen.truncate(causes.min(CAUSES.len()));
        let mut tickets = Vec::new();
        let mut ids: Vec<u32> = (1000..10_000).collect();
        ids.shuffle(&mut rng);
        for cause in chosen {
            let repeats = rng.random_range(min..=max.max(min));
            for _ in 0..repeats {
                let (component, wordings) = CAUSES[cause];
                let id = ids.pop().expect("ids to spare");
                let users = rng.random_range(1..=40);
                let wording = wordings[rng.random_range(0..wordings.len())];
                let since = SINCE[rng.random_range(0..SINCE.len())];
                let extra = DISTRACTORS[rng.random_range(0..DISTRACTORS.len())];
                let line =
                    format!("#{id} [{component}] {wording}. Seen by {users} users since {since}. {extra}");
                tickets.push(Ticket { id, cause, users, line: line.trim_end().to_string() });
            }
        }
        tickets.shuffle(&mut rng);
        Self { tickets }
    }

    /// The file's text, one ticket per line.
    pub fn text(&self) -> String {
        self.tickets.iter().map(|t| t.line.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// The cause's canonical wording.
    pub fn cause_name(cause: usize) -> &'static str {
        CAUSES[cause].1[0]
    }

    pub fn truth(&self) -> Truth {
        let mut per: std::collections::BTreeMap<usize, (usize, u64)> = Default::default();
        for t in &self.tickets {
            let e = per.entry(t.cause).or_default();
            e.0 += 1;
            e.1 += u64::from(t.users);
        }
        let mut truth: Truth = per.into_iter().map(|(c, (n, u))| (c, n, u)).collect();
        truth.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        truth
    }
}

/// How a grouping of tickets (each group: 0-based positions in the file) matches the
/// generator's causes: pairwise precision (pairs put in one group that share a cause) and recall
/// (pairs sharing a cause put in one group).
pub fn pair_scores(file: &TicketFile, groups: &[Vec<usize>]) -> (f64, f64) {
    let mut group_of = vec![None; file.tickets.len()];
    for (g, members) in groups.iter().enumerate() {
        for &i in members {
            if let Some(slot) = group_of.get_mut(i) {
                *slot = Some(g);
            }
        }
    }
    let (mut together, mut together_right, mut same_cause, mut same_cause_found) = (0u64, 0u64, 0u64, 0u64);
    let t = &file.tickets;
    for i in 0..t.len() {
        for j in i + 1..t.len() {
            let same = t[i].cause == t[j].cause;
            let joined = group_of[i].is_some() && group_of[i] == group_of[j];
            together += u64::from(joined);
            together_right += u64::from(joined && same);
            same_cause += u64::from(same);
            same_cause_found += u64::from(same && joined);
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    (ratio(together_right, together), ratio(same_cause_found, same_cause))
}

/// The groups of a records-mode result table as 0-based positions (its rows' 1-based `records`).
pub fn table_groups(table: &[serde_json::Value]) -> Vec<Vec<usize>> {
    table
        .iter()
        .map(|row| {
            row["records"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_u64)
                .filter_map(|p| (p as usize).checked_sub(1))
                .collect()
        })
        .collect()
}
