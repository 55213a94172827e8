-- Auditors filter the trail by patient and by institution (issue #20's audit page), newest
-- first: such a filter walks its own index backwards by id instead of the whole trail. (An
-- action is common enough that walking the trail by id finds a page of it soon; every index
-- here is one more write per audited event.)
CREATE INDEX audit_event_patient ON audit_event(patient, id);
CREATE INDEX audit_event_institution ON audit_event(institution, id);
