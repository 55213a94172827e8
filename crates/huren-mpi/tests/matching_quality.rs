//! Acceptance for linking (issue #5): on a synthetic population of 20,000 people at three
//! institutions, automatic links are at least 99.9% precise (pairwise), no person ends up with
//! two different valid numbers, and no records of different people are joined through a
//! borrowed number. Recall and the review queue are printed for docs/mpi.md:
//! `cargo test -p huren-mpi --release --test matching_quality -- --nocapture`.

use huren_mpi::link::Thresholds;
use huren_mpi::population::{evaluate, generate};
use time::{Date, Month};

#[test]
fn twenty_thousand_people_at_three_institutions() {
    let today = Date::from_calendar_date(2026, Month::November, 25).expect("date");
    for seed in [1u64, 2] {
        let pop = generate(20_000, seed, today);
        let q = evaluate(&pop, &Thresholds::default());
        println!(
            "seed {seed}: {} people, {} records, {} candidate pairs; true pairs {}, linked {} \
             ({} correct): precision {:.5}, recall {:.4}; review queue {} pairs; merges refused \
             for conflicting numbers {}",
            q.people,
            q.records,
            q.candidate_pairs,
            q.true_pairs,
            q.linked_pairs,
            q.correct_linked_pairs,
            q.precision(),
            q.recall(),
            q.review_pairs,
            q.blocked_merges
        );
        assert_eq!(
            q.persons_with_two_numbers, 0,
            "a person with two valid numbers"
        );
        assert_eq!(
            q.links_through_a_borrowed_number, 0,
            "records joined through a borrowed number"
        );
        assert!(q.precision() >= 0.999, "precision {:.5}", q.precision());
        // Recall is reported, not a target; it must at least show the matcher works.
        assert!(q.recall() > 0.8, "recall {:.4}", q.recall());
    }
}

#[test]
fn the_measurement_notices_careless_thresholds() {
    // Linking on a name and a birth year's worth of agreement must show up as lost precision,
    // or the acceptance above would prove nothing.
    let today = Date::from_calendar_date(2026, Month::November, 25).expect("date");
    let pop = generate(5_000, 3, today);
    let loose = evaluate(
        &pop,
        &Thresholds {
            link: 4.0,
            review: 2.0,
        },
    );
    println!(
        "loose thresholds: precision {:.4}, recall {:.4}",
        loose.precision(),
        loose.recall()
    );
    assert!(
        loose.precision() < 0.999,
        "precision {:.5}",
        loose.precision()
    );
}
