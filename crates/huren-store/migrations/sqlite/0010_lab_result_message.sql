-- The results of one message, found by the supersession step of every later message.
CREATE INDEX lab_result_message ON lab_result(message_id);
