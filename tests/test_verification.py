"""ACD, ACD-I, cosine verification distances and the ROC/threshold logic on constructed data."""
import numpy as np
import pytest

from lib.evaluation import verification as V


def test_acd_is_zero_for_identical_frames():
    frames = np.tile(np.array([[0.3, -1.2, 5.0]]), (16, 1))
    assert V.acd(frames) == 0.0


def test_acd_equals_known_step():
    # every consecutive step is the vector (3, 4): L2 length 5
    frames = np.arange(10)[:, None] * np.array([[3.0, 4.0]])
    assert V.acd(frames) == pytest.approx(5.0)
    # alternating steps of length 1 and 3 average to 2
    frames = np.cumsum(np.array([[0.0], [1.0], [3.0], [1.0], [3.0]]), axis=0)
    assert V.acd(frames) == pytest.approx(2.0)


def test_acd_needs_two_frames():
    with pytest.raises(ValueError):
        V.acd(np.zeros((1, 4)))


def test_acd_input_is_mean_distance_to_input_face():
    generated = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert V.acd_input(np.zeros(2), generated) == pytest.approx((0 + 5 + 10) / 3)


def test_cosine_and_video_distance():
    assert V.cosine_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert V.cosine_distance([2, 0], [5, 0]) == pytest.approx(0.0)
    assert V.cosine_distance([1, 0], [-1, 0]) == pytest.approx(2.0)
    # reference mean feature is (1, 1)/sqrt2 direction; frames along x and y each are 45 degrees away
    reference = np.array([[1.0, 0.0], [0.0, 1.0]])
    video = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = np.mean([1 - np.cos(np.pi / 4), 1 - np.cos(np.pi / 4), 0.0])
    assert V.video_distance(video, reference) == pytest.approx(expected)


def test_roc_separable_example_has_auc_one_and_the_separating_threshold():
    distances = [0.1, 0.2, 0.3, 0.35, 0.5, 0.6]
    same = [True, True, True, False, False, False]
    roc = V.roc_from_distances(distances, same)
    assert roc.auc == pytest.approx(1.0)
    assert roc.tuned_threshold == pytest.approx(0.325)  # the middle of the gap 0.3..0.35
    assert roc.tuned_accuracy == pytest.approx(1.0)
    assert roc.eer == pytest.approx(0.0) and 0.3 <= roc.eer_threshold < 0.35
    assert roc.fpr[0] == 0 and roc.tpr[0] == 0 and roc.fpr[-1] == 1 and roc.tpr[-1] == 1


def test_roc_auc_is_the_probability_a_same_pair_is_closer():
    same_d = [0.1, 0.2, 0.3]
    diff_d = [0.25, 0.5, 0.6]
    roc = V.roc_from_distances(same_d + diff_d, [True] * 3 + [False] * 3)
    # 0.1 and 0.2 beat all three different pairs, 0.3 beats two: 8 of 9
    assert roc.auc == pytest.approx(8 / 9)
    from sklearn.metrics import roc_auc_score
    assert roc.auc == pytest.approx(roc_auc_score([1] * 3 + [0] * 3, -np.array(same_d + diff_d)))


def test_roc_handles_ties_as_half():
    roc = V.roc_from_distances([0.5, 0.5], [True, False])
    assert roc.auc == pytest.approx(0.5)


def test_roc_needs_both_classes():
    with pytest.raises(ValueError, match="both"):
        V.roc_from_distances([0.1, 0.2], [True, True])


def test_verification_accuracy_and_default_threshold():
    assert V.verification_accuracy([0.1, 0.2, 0.5, 0.9], 0.3) == pytest.approx(0.5)
    assert V.default_threshold("dlib", [0], [1])[0] == pytest.approx(0.07)
    threshold, source = V.default_threshold("ae", [0.2, 0.4], [0.8, 1.0])
    assert threshold == pytest.approx(0.6) and "midpoint" in source
    # a FaceNet trained here has no published threshold
    assert V.default_threshold("facenet", [0.2], [0.6], pretrained=False)[0] == pytest.approx(0.4)


def test_real_pairs_are_balanced_and_labelled():
    subjects = ["a", "a", "a", "b", "b", "c"]
    pairs = V.real_pairs(subjects, np.random.default_rng(0), max_pairs=6)
    assert sum(s for *_, s in pairs) == 3 and sum(not s for *_, s in pairs) == 3
    for i, j, same in pairs:
        assert i < j and same == (subjects[i] == subjects[j])


def test_tuned_threshold_takes_the_middle_of_the_widest_tied_interval():
    # same pairs 0.02..0.05, different 0.45..0.9: every threshold in [0.05, 0.45) is perfect
    same_d, diff_d = [0.02, 0.03, 0.05], [0.45, 0.6, 0.9]
    threshold, accuracy = V.accuracy_threshold(same_d + diff_d, [True] * 3 + [False] * 3)
    assert threshold == pytest.approx(0.25) and accuracy == 1.0
    # overlap: one different pair at 0.04 -> best accuracy 5/6 over [0.03, 0.04) and [0.05, 0.6):
    # the wider one wins
    threshold, accuracy = V.accuracy_threshold([0.02, 0.03, 0.05, 0.04, 0.6, 0.9], [True] * 3 + [False] * 3)
    assert threshold == pytest.approx(0.325) and accuracy == pytest.approx(5 / 6)
    # all pairs "same" except the farthest: accepting the five smallest is best
    threshold, _ = V.accuracy_threshold([0.1, 0.2, 0.3, 0.4, 0.5, 0.9], [True] * 5 + [False])
    assert threshold == pytest.approx(0.7)


def test_equal_error_rate_on_a_constructed_overlap():
    # 4 same, 4 different; at 0.45 one same pair is rejected (FRR 1/4) and one different accepted (FAR 1/4)
    distances = [0.1, 0.2, 0.3, 0.5, 0.4, 0.6, 0.7, 0.8]
    roc = V.roc_from_distances(distances, [True] * 4 + [False] * 4)
    assert roc.eer == pytest.approx(0.25)
    assert roc.eer_threshold in (0.3, 0.4, 0.5)
