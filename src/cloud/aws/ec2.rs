//! The EC2 Query API calls of an image import: `ImportImage` and its task,
//! naming (`CopyImage`), tags, launch permissions, and `DescribeImages`.
//! Requests are form-encoded POSTs; answers are XML.

use std::collections::BTreeMap;

use reqwest::Method;

use super::{AwsClient, AwsError, Call, parse_xml, xml_text};

/// The EC2 API version kiln speaks.
const VERSION: &str = "2016-11-15";

/// `ImportImage`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct ImportImageRequest {
    pub description: String,
    /// `OVA`, `VMDK`, `RAW`, `VHD`, `VHDX`.
    pub format: String,
    pub bucket: String,
    pub key: String,
    pub license_type: Option<String>,
    pub role_name: Option<String>,
    pub boot_mode: Option<String>,
    pub platform: Option<String>,
    pub kms_key_id: Option<String>,
    pub encrypted: bool,
}

/// An import task as `DescribeImportImageTasks` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTask {
    pub id: String,
    /// `active`, `completed`, `deleting`, `deleted`.
    pub status: String,
    pub status_message: Option<String>,
    pub progress: Option<String>,
    pub image_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub state: Option<String>,
    pub snapshot_ids: Vec<String>,
}

impl AwsClient {
    async fn query(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> Result<bytes::Bytes, AwsError> {
        let mut form = url_encoded(&[
            ("Action".to_owned(), action.to_owned()),
            ("Version".to_owned(), VERSION.to_owned()),
        ]);
        if !params.is_empty() {
            form.push('&');
            form.push_str(&url_encoded(params));
        }
        let url = self.url(
            "ec2",
            &format!("{}/", self.endpoints.ec2.trim_end_matches('/')),
        )?;
        let answer = self
            .send(Call {
                service: "ec2",
                action,
                method: Method::POST,
                url,
                headers: vec![(
                    "content-type".into(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                )],
                body: form.into(),
            })
            .await?;
        Ok(answer.body)
    }

    pub async fn import_image(&self, request: &ImportImageRequest) -> Result<String, AwsError> {
        let mut p = vec![
            pair("Description", &request.description),
            pair("DiskContainer.1.Description", &request.description),
            pair("DiskContainer.1.Format", &request.format),
            pair("DiskContainer.1.UserBucket.S3Bucket", &request.bucket),
            pair("DiskContainer.1.UserBucket.S3Key", &request.key),
        ];
        let optional = [
            ("LicenseType", &request.license_type),
            ("RoleName", &request.role_name),
            ("BootMode", &request.boot_mode),
            ("Platform", &request.platform),
            ("KmsKeyId", &request.kms_key_id),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                p.push(pair(name, v));
            }
        }
        if request.encrypted {
            p.push(pair("Encrypted", "true"));
        }
        let body = self.query("ImportImage", &p).await?;
        let doc = parse_xml("ec2", "ImportImage", &body)?;
        xml_text(doc.root(), "importTaskId").ok_or_else(|| AwsError::BadAnswer {
            service: "ec2",
            action: "ImportImage".into(),
            problem: "no importTaskId".into(),
        })
    }

    pub async fn describe_import_image_task(&self, id: &str) -> Result<ImportTask, AwsError> {
        let body = self
            .query("DescribeImportImageTasks", &[pair("ImportTaskId.1", id)])
            .await?;
        let doc = parse_xml("ec2", "DescribeImportImageTasks", &body)?;
        let task = doc
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "item")
            .ok_or_else(|| AwsError::BadAnswer {
                service: "ec2",
                action: "DescribeImportImageTasks".into(),
                problem: format!("task {id} is not listed"),
            })?;
        // Only the task's own fields, not those of its snapshot details.
        let own = |name: &str| {
            task.children()
                .find(|n| n.is_element() && n.tag_name().name() == name)
                .and_then(|n| n.text())
                .map(|t| t.trim().to_owned())
        };
        Ok(ImportTask {
            id: own("importTaskId").unwrap_or_else(|| id.to_owned()),
            status: own("status").unwrap_or_default(),
            status_message: own("statusMessage"),
            progress: own("progress"),
            image_id: own("imageId"),
        })
    }

    /// Copies an image in its region under a new name, as Packer names an
    /// imported image; returns the copy's id.
    pub async fn copy_image(
        &self,
        source: &str,
        name: &str,
        description: &str,
    ) -> Result<String, AwsError> {
        let mut p = vec![
            pair("SourceImageId", source),
            pair("SourceRegion", &self.region),
            pair("Name", name),
        ];
        if !description.is_empty() {
            p.push(pair("Description", description));
        }
        let body = self.query("CopyImage", &p).await?;
        let doc = parse_xml("ec2", "CopyImage", &body)?;
        xml_text(doc.root(), "imageId").ok_or_else(|| AwsError::BadAnswer {
            service: "ec2",
            action: "CopyImage".into(),
            problem: "no imageId".into(),
        })
    }

    pub async fn deregister_image(&self, id: &str) -> Result<(), AwsError> {
        self.query("DeregisterImage", &[pair("ImageId", id)])
            .await
            .map(drop)
    }

    pub async fn create_tags(
        &self,
        resources: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        if resources.is_empty() || tags.is_empty() {
            return Ok(());
        }
        let mut p = Vec::new();
        for (i, r) in resources.iter().enumerate() {
            p.push(pair(&format!("ResourceId.{}", i + 1), r));
        }
        for (i, (k, v)) in tags.iter().enumerate() {
            p.push(pair(&format!("Tag.{}.Key", i + 1), k));
            p.push(pair(&format!("Tag.{}.Value", i + 1), v));
        }
        self.query("CreateTags", &p).await.map(drop)
    }

    /// Lets accounts (`ami_users`) and groups (`ami_groups`, e.g. `all`)
    /// launch the image.
    pub async fn add_launch_permissions(
        &self,
        image: &str,
        users: &[String],
        groups: &[String],
    ) -> Result<(), AwsError> {
        if users.is_empty() && groups.is_empty() {
            return Ok(());
        }
        let mut p = vec![pair("ImageId", image)];
        for (i, u) in users.iter().enumerate() {
            p.push(pair(&format!("LaunchPermission.Add.{}.UserId", i + 1), u));
        }
        for (i, g) in groups.iter().enumerate() {
            let n = users.len() + i + 1;
            p.push(pair(&format!("LaunchPermission.Add.{n}.Group"), g));
        }
        self.query("ModifyImageAttribute", &p).await.map(drop)
    }

    pub async fn describe_image(&self, id: &str) -> Result<Image, AwsError> {
        let body = self
            .query("DescribeImages", &[pair("ImageId.1", id)])
            .await?;
        let doc = parse_xml("ec2", "DescribeImages", &body)?;
        let item = doc
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "item")
            .ok_or_else(|| AwsError::BadAnswer {
                service: "ec2",
                action: "DescribeImages".into(),
                problem: format!("image {id} is not listed"),
            })?;
        let own = |name: &str| {
            item.children()
                .find(|n| n.is_element() && n.tag_name().name() == name)
                .and_then(|n| n.text())
                .map(|t| t.trim().to_owned())
        };
        let snapshot_ids = item
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "snapshotId")
            .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
            .filter(|t| !t.is_empty())
            .collect();
        Ok(Image {
            id: own("imageId").unwrap_or_else(|| id.to_owned()),
            name: own("name"),
            state: own("imageState"),
            snapshot_ids,
        })
    }
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

/// `application/x-www-form-urlencoded` as the AWS SDKs write it (a space
/// is `+`): moto re-encodes the form this way to check the signature.
fn url_encoded(params: &[(String, String)]) -> String {
    let form = |t: &str| super::sigv4::uri_encode(t, true).replace("%20", "+");
    params
        .iter()
        .map(|(k, v)| format!("{}={}", form(k), form(v)))
        .collect::<Vec<_>>()
        .join("&")
}
