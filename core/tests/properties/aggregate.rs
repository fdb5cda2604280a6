use std::time::Duration;

use gauntlet_core::ServerId;
use gauntlet_core::aggregate::{Answer, canonical, majority, quorum};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The same meaning written differently: key order and number formatting vary by `style`.
fn honest_text(x: i64, style: u8) -> Value {
    let text = match style % 3 {
        0 => format!(r#"{{"total": {x}, "items": [1, 2.5], "ok": true}}"#),
        1 => format!(r#"{{"ok":true,"items":[1.0,2.50],"total":{x}.0}}"#),
        _ => format!(r#"{{"items": [1e0, 25e-1], "total": {x}, "ok": true}}"#),
    };
    serde_json::from_str(&text).unwrap()
}

fn answer(id: usize, result: Result<Value, String>) -> Answer {
    Answer { server: ServerId(id as u32), latency: Duration::from_millis(id as u64), result }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn with_an_honest_majority_majority_aggregation_returns_the_honest_answer(
        n in 1usize..10, x in -1_000i64..1_000, styles in prop::collection::vec(0u8..3, 10),
        lies in prop::collection::vec(prop_oneof![Just(None), (any::<i64>()).prop_map(Some)], 10),
        order in any::<prop::sample::Index>(),
    ) {
        let honest = n / 2 + 1;
        let mut answers: Vec<Answer> = (0..n)
            .map(|i| {
                if i < honest {
                    answer(i, Ok(honest_text(x, styles[i])))
                } else {
                    match lies[i] {
                        Some(lie) if lie != x => answer(i, Ok(json!({"total": lie, "items": [1, 2.5], "ok": true}))),
                        _ => answer(i, Err("timeout".into())),
                    }
                }
            })
            .collect();
        answers.rotate_left(order.index(n));
        let agreed = majority(&answers).unwrap();
        prop_assert_eq!(&agreed.canonical, &canonical(&honest_text(x, 0)));
        prop_assert_eq!(agreed.agreeing.len(), honest);
    }

    #[test]
    fn aggregation_never_returns_an_answer_held_by_fewer_than_the_quorum(
        picks in prop::collection::vec(0u8..4, 1..10), k in 1u32..10,
    ) {
        let answers: Vec<Answer> = picks
            .iter()
            .enumerate()
            .map(|(i, &p)| if p == 3 { answer(i, Err("down".into())) } else { answer(i, Ok(json!({"v": p}))) })
            .collect();
        if let Ok(agreed) = quorum(&answers, k) {
            let holders = answers.iter().filter(|a| a.result.as_ref().is_ok_and(|v| canonical(v) == agreed.canonical)).count();
            prop_assert!(holders as u32 >= k, "{holders} hold the answer, quorum {k}");
            prop_assert_eq!(holders, agreed.agreeing.len());
            prop_assert_eq!(agreed.agreeing.len() + agreed.dissenting.len(), answers.len());
        }
    }
}
