-- A study's encodings (transfer syntax, lossy flag) are read for every result recognition judges
-- (lossy images are not recognized, PS3.5 §8.2): as an index-only scan of the study's
-- instances rather than a read of each instance row (a 500-slice CT took 2.6 ms of a patient
-- page's 13).
CREATE INDEX instance_study_encoding ON instance(study_id, lifecycle, transfer_syntax_uid, lossy);
