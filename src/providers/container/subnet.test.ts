import assert from "node:assert/strict";
import { test } from "node:test";
import { hostAddress, parseSubnet, pickSubnet, subnetAt } from "./subnet.ts";

test("subnets span 10.200.0.0/14 and hosts start at .2", () => {
  assert.equal(subnetAt(0).cidr, "10.200.0.0/24");
  assert.equal(subnetAt(1023).cidr, "10.203.255.0/24");
  assert.equal(subnetAt(1024).cidr, "10.200.0.0/24");
  const subnet = subnetAt(263);
  assert.deepEqual(subnet, { cidr: "10.201.7.0/24", gateway: "10.201.7.1", prefix: "10.201.7" });
  assert.equal(hostAddress(subnet, 1), "10.201.7.2");
  assert.deepEqual(parseSubnet("10.201.7.0/24"), subnet);
});

test("pickSubnet starts from the fleet id and skips what the machine uses", () => {
  const id = (263).toString(16).padStart(6, "0");
  assert.equal(pickSubnet(id, []).cidr, "10.201.7.0/24");
  // an address inside, a covering route, a default route (ignored) and a host route
  assert.equal(pickSubnet(id, ["10.201.7.1/24", "0.0.0.0/0"]).cidr, "10.201.8.0/24");
  assert.equal(pickSubnet(id, ["10.201.0.0/16"]).cidr, "10.202.0.0/24");
  assert.equal(pickSubnet(id, ["10.201.7.9"]).cidr, "10.201.8.0/24");
  // a wider prefix elsewhere does not matter
  assert.equal(pickSubnet(id, ["192.168.0.0/16", "10.0.0.0/16"]).cidr, "10.201.7.0/24");
  // the same id always picks the same subnet: two fleets differ by id
  assert.notEqual(pickSubnet("abcdef", []).cidr, pickSubnet("123456", []).cidr);
});
